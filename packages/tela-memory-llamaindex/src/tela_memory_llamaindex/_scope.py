"""Who a LlamaIndex class acts for: one user, or (readers only) every user by name.

Every class of this package is built for a user. Thread ids (chat store keys, session ids,
the blocks' own threads) live inside that user's namespace; a class built without a user,
and without the explicit ``all_users=True`` where a class offers it, raises ``ScopeError``.
"""

from __future__ import annotations

from tela_memory.errors import ScopeError
from tela_memory.stores import _common as common
from tela_memory.stores.base import MessageStore
from tela_memory.stores.scoped import UserStore


def check_scope(who: str, user_id: str | None, all_users: bool, *, cross_user: bool) -> None:
    """Refuse a reader built for nobody, or for one user and everyone at once.

    Args:
        who: the class (or call) named in the error.
        user_id: the user it acts for.
        all_users: the explicit cross-user opt-in.
        cross_user: whether ``who`` offers ``all_users=True`` at all.
    """
    if all_users and not cross_user:
        raise ScopeError(f"{who} acts for one user and has no all_users mode: pass user_id=")
    if all_users and user_id is not None:
        raise ScopeError(
            f"{who} got both user_id= and all_users=True: pass user_id= to act for one user, "
            "or all_users=True (operators only) to search every user's messages"
        )
    if user_id is None and not all_users:
        hint = " (or all_users=True, for an operator's search across users)" if cross_user else ""
        raise ScopeError(f"{who} needs the user it acts for: pass user_id='...'{hint}")
    if user_id is not None:
        common.check_id("user_id", user_id)


def bind_user(
    who: str, store: MessageStore | UserStore, user_id: str | None
) -> tuple[MessageStore, UserStore]:
    """The backend and the acting user's view of it.

    ``store`` may be a ``UserStore`` (``store.for_user("ana")``), whose user is then the
    acting one: ``user_id`` may repeat it but never name another.
    """
    if isinstance(store, UserStore):
        if user_id is not None and user_id != store.user_id:
            raise ScopeError(
                f"{who} got a store already bound to a user and a different user_id=; "
                "pass one of them"
            )
        return store.store, store
    check_scope(who, user_id, False, cross_user=False)
    assert user_id is not None
    return store, store.for_user(user_id)


__all__ = ["bind_user", "check_scope"]
