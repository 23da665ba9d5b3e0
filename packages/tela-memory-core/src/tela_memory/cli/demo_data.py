"""The demo's conversation: one user, six sessions over five weeks, written deterministically.

Maya plans a garden and a cabin trip with an assistant. Session one holds facts that a later
session asks about (the cabin's wifi password, her sister's peanut allergy); there are weather
tool calls with their results and a photo of a tomato leaf. About 400 messages in all.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tela_memory.formats import Conversation
from tela_memory.messages import ImageBlock, Message, TextBlock, ToolCallBlock

USER = "maya"
START = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
WIFI_FACT = "the cabin wifi password is blue-heron-42"
SYSTEM = (
    "You are Tela, a helpful assistant for planning a home garden and weekend trips. "
    "Be concise and practical."
)
# A 2x2 PNG (green/brown pixels) standing in for a photo of a tomato leaf.
LEAF_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAE0lEQVR4nGOw6TGqiNJgAGIgCwAcGgPpoRQ72wAAAABJ"
    "RU5ErkJggg=="
)

_TOPICS = [
    ("tomatoes", "Water deeply twice a week and mulch to keep the soil moist."),
    ("basil", "Pinch the flower buds so the plant keeps making leaves."),
    ("compost", "Keep a mix of greens and browns, roughly one to three by volume."),
    ("raised beds", "Thirty centimetres of depth is plenty for most vegetables."),
    ("seedlings", "Harden them off over a week before planting out."),
    ("aphids", "A strong jet of water and some ladybirds usually sort them out."),
    ("watering", "Early morning is best: less evaporation, and leaves dry by night."),
    ("peppers", "They like heat; wait until nights stay above ten degrees."),
    ("hiking boots", "Break them in on short walks before the trip."),
    ("packing", "Layers, a rain shell, a head torch and a paper map."),
    ("the drive", "Leave before eight to miss the traffic at the ridge road."),
    ("firewood", "Buy it locally; moving firewood spreads pests."),
]
_QUESTIONS = [
    "What should I know about {t}?",
    "Any tips for {t} this week?",
    "I keep forgetting: what was the advice on {t}?",
    "Quick question about {t}.",
    "Is there anything new to do for {t}?",
]
_ACKS = ["Thanks, that helps.", "Great, noted.", "Perfect.", "Okay, I'll try that.", "Got it!"]
_SESSIONS = [
    ("Garden plans and the cabin", 0),
    ("Seedlings and compost", 6),
    ("Tomato troubles", 13),
    ("Packing for the cabin", 20),
    ("Pests and watering", 27),
    ("Back at the cabin", 34),
]


def _clock(day: int) -> datetime:
    return START + timedelta(days=day)


def _session(index: int, title: str, day: int, rnd: random.Random) -> Conversation:
    t = _clock(day)
    msgs: list[Message] = []

    def add(message: Message) -> None:
        nonlocal t
        t += timedelta(minutes=rnd.randint(1, 4))
        msgs.append(message.model_copy(update={"created_at": t}))

    add(Message.system(SYSTEM))
    if index == 0:
        add(
            Message.user(
                "Hi! I'm Maya. We rented a cabin by the lake for April; "
                f"for the record, {WIFI_FACT}."
            )
        )
        add(Message.assistant("Noted, Maya: I'll remember the cabin details for April."))
        add(Message.user("Also my sister Ingrid is coming, and she is allergic to peanuts."))
        add(Message.assistant("Understood: no peanuts in anything we plan for Ingrid."))
    if index == 2:
        add(
            Message.user(
                [
                    TextBlock(
                        text="Here is a photo of a tomato leaf with yellow spots. What is it?"
                    ),
                    ImageBlock(
                        data=LEAF_PNG,
                        mime_type="image/png",
                        width=2,
                        height=2,
                        alt_text="tomato leaf with yellow spots",
                    ),
                ]
            )
        )
        add(
            Message.assistant(
                "Yellow spots low on the plant are usually early blight: remove "
                "the affected leaves and water at the base, not on the leaves."
            )
        )
    for turn in range(30):
        topic, advice = _TOPICS[rnd.randrange(len(_TOPICS))]
        if turn % 10 == 4:
            call = ToolCallBlock(
                id=f"call_{index}_{turn}",
                name="get_weather",
                arguments={"place": "Lake cabin", "day": f"+{turn % 7}"},
            )
            add(Message.user("Will it rain at the lake this weekend?"))
            add(Message.assistant("Let me check the forecast.", tool_calls=[call]))
            rain = rnd.choice(["light rain", "sunny", "cloudy", "showers"])
            add(Message.tool(call.id, f'{{"forecast": "{rain}", "high_c": {rnd.randint(8, 19)}}}'))
            add(Message.assistant(f"The forecast says {rain}; pack accordingly."))
            continue
        add(Message.user(rnd.choice(_QUESTIONS).format(t=topic)))
        add(Message.assistant(f"For {topic}: {advice}"))
        if rnd.random() < 0.3:
            add(Message.user(rnd.choice(_ACKS)))
            add(Message.assistant("Happy to help. Anything else?"))
    if index == len(_SESSIONS) - 1:
        add(Message.user("We're at the cabin! What was the wifi password again?"))
    return Conversation.linear(msgs, id=f"demo-{index + 1}", title=title, user_id=USER)


def demo_conversations(seed: int = 7) -> list[Conversation]:
    """The demo's sessions, identical on every call with the same seed."""
    rnd = random.Random(seed)
    return [_session(i, title, day, rnd) for i, (title, day) in enumerate(_SESSIONS)]


__all__ = ["USER", "WIFI_FACT", "demo_conversations"]
