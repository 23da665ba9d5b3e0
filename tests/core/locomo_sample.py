"""A tiny LoCoMo-shaped sample shared by the evaluation tests."""

from __future__ import annotations


def locomo_sample() -> list[dict[str, object]]:
    return [
        {
            "sample_id": "s1",
            "conversation": {
                "speaker_a": "Ann",
                "speaker_b": "Bo",
                "session_1_date_time": "1:56 pm on 8 May, 2023",
                "session_1": [
                    {"speaker": "Ann", "dia_id": "D1:1", "text": "I bought a kayak last week"},
                    {"speaker": "Bo", "dia_id": "D1:2", "text": "Nice, where will you paddle?"},
                    {
                        "speaker": "Ann",
                        "dia_id": "D1:3",
                        "text": "On the lake near my aunt",
                        "img_url": ["https://x.test/k.jpg"],
                        "blip_caption": "a red kayak on a lake",
                    },
                ],
                "session_2_date_time": "10:00 am on 9 June, 2023",
                "session_2": [
                    {"speaker": "Bo", "dia_id": "D2:1", "text": "My dog learned to fetch"},
                    {"speaker": "Ann", "dia_id": "D2:2", "text": "Your dog is clever"},
                ],
            },
            "qa": [
                {
                    "question": "What did Ann buy?",
                    "answer": "a kayak",
                    "evidence": ["D1:1"],
                    "category": 4,
                },
                {"question": "Where does Ann paddle?", "evidence": ["D1:3; D9:9"], "category": 1},
                {"question": "What can the dog do?", "evidence": ["D2:1"], "category": 2},
                {"question": "Adversarial", "evidence": ["D2:2"], "category": 5},
                {"question": "No evidence", "evidence": ["D7:7"], "category": 4},
            ],
        }
    ]
