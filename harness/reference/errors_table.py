"""Error codes and the failure table as rows of the reference, read from the code.

The codes are ``agent_service.errors.ErrorCode``; each member's meaning is the docstring
written under it, which Python does not keep at run time, so it is read from the module's
source. The failure table is ``pipeline.failures.action_for`` asked for every failure kind,
with retries left and with retries used up.
"""

from __future__ import annotations

import ast
import inspect
import itertools
from dataclasses import dataclass

from agent_service import errors
from agent_service.contract.amqp import DEAD_LETTER_REASON_HEADER
from agent_service.errors import ErrorCode
from agent_service.pipeline.failures import Failure, FailureAction, FailureKind, action_for

# Where each action leaves the request, in an operator's words.
ACTION_WORDS = {
    FailureAction.DEAD_LETTER: "dead-lettered to DLX_AGENT, reason in the"
    f" {DEAD_LETTER_REASON_HEADER} header",
    FailureAction.RETRY: "republished to the next wait queue AGENT_QUEUE.retry.N, then acked",
    FailureAction.ERROR_REPLY: "error reply (status error, error.code, the fallback text) to"
    " WEBHOOK_QUEUE, then acked",
}


@dataclass(frozen=True)
class CodeRow:
    code: str
    meaning: str


@dataclass(frozen=True)
class KindRow:
    kind: str
    with_retries_left: str
    retries_used_up: str


def _member_docs(cls: type) -> dict[str, str]:
    """``NAME = ...`` followed by a string statement: that string, per member."""
    tree = ast.parse(inspect.getsource(errors))
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    docs: dict[str, str] = {}
    for statement, following in itertools.pairwise(node.body):
        if not (isinstance(statement, ast.Assign) and isinstance(following, ast.Expr)):
            continue
        value = following.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                docs[target.id] = " ".join(value.value.split())
    return docs


def code_rows() -> list[CodeRow]:
    docs = _member_docs(ErrorCode)
    return [CodeRow(code.value, docs.get(code.name, "")) for code in ErrorCode]


def _words(action: FailureAction) -> str:
    return ACTION_WORDS.get(action, action.value)  # an action added later shows by its name


def kind_rows() -> list[KindRow]:
    rows = []
    for kind in FailureKind:
        failure = Failure(kind, ErrorCode.INTERNAL_ERROR, "")
        rows.append(
            KindRow(
                kind.value,
                _words(action_for(failure, retry_count=0, max_retries=3)),
                _words(action_for(failure, retry_count=3, max_retries=3)),
            )
        )
    return rows
