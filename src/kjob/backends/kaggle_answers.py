"""Reading Kaggle's answers: each one is checked against kagglesdk's own types before kjob uses it.

kagglesdk parses an answer without checking it: a string where a number belongs is kept as it
is (and a push would be recorded as version "abc"), a string where a list belongs fails deep
inside with a TypeError. So every field of an answer is checked against the FieldMetadata of
the SDK's response type first, recursively, and a malformed answer becomes one line naming
the call and the field. Fields the SDK does not know are ignored, as the SDK ignores them.

The protocol's convention: a field left out (or null) takes its default, so `{}` is a valid
answer and what it means is decided per call, following the SDK's types:

    SaveKernel                     neither a version number nor an error: the push backend says
                                   so in one line (it knows where the kernel's page is)
    GetKernel                      no metadata: refused here; kjob needs the kernel's current
                                   version and attached sources, and "nothing attached" or "no
                                   version" read from a missing object would be a false answer
    GetKernelSessionStatus         no status: QUEUED (the default, left out on the wire)
    ListKernelSessionOutput        no files (yet) and no log; a file listed without its name or
                                   URL is refused here (it could be neither saved nor fetched)
    ListKernelFiles                no files
    GetAcceleratorQuotaStatistics  no quota known: the quota check has nothing to check
    DeleteKernel                   no error message: deleted
    GetDataset                     its fields' defaults (kjob reads currentVersionNumber, if given)
    GetDatasetStatus               no status: NOT_YET_PERSISTED (the default), i.e. not ready yet
    StartBlobUpload                no token or URL: refused here (there would be nowhere to upload)
    CreateDataset(Version)         no status: not "ok", so the push says it was refused
"""

import enum
import json
from datetime import datetime, timedelta

import requests
from kagglesdk.kaggle_object import (DateTimeSerializer, EnumSerializer, KaggleObject, ListSerializer,
                                     MapSerializer, TimeDeltaSerializer)

from kjob.credentials import redact

# What kjob cannot do without, per method: (the list holding the items or None, the field).
REQUIRED = {
    "GetKernel": [(None, "metadata")],
    "ListKernelSessionOutput": [("files", "fileName"), ("files", "url")],
    "StartBlobUpload": [(None, "token"), (None, "createUrl")],
}
_METHOD_OF = {"ApiDataset": "GetDataset"}  # response types not named after their method
# Whole numbers kjob uses as version numbers or sizes: the SDK's types say only "int".
_LEAST = {"versionNumber": 1, "currentVersionNumber": 1, "size": 0}
_PARSERS = {timedelta: TimeDeltaSerializer(), datetime: DateTimeSerializer()}
_WHAT = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


class AnswerProblem(Exception):
    """Kaggle answered `method` with something kjob cannot use; `text` completes the sentence
    "Kaggle's answer to <method> ... " (transport.py adds what the call was about)."""

    def __init__(self, method: str, text: str):
        super().__init__(f"{method}: {text}")
        self.method, self.text = method, text


def method_name(response_type: type) -> str:
    """The API method a response type answers: ApiGetKernelResponse -> GetKernel."""
    name = response_type.__name__
    return _METHOD_OF.get(name) or name.removeprefix("Api").removesuffix("Response")


def read_answer(response_type: type | None, http_response: requests.Response):
    """The SDK object for an HTTP answer, or HTTPError (as kagglesdk raises it) or AnswerProblem."""
    if http_response.status_code >= 400:
        http_response.raise_for_status()
    if response_type is None:  # a method without an answer
        return None
    method = method_name(response_type)
    try:
        data = json.loads(http_response.content)
    except ValueError as exc:  # not JSON, or not UTF-8
        kind = (http_response.headers.get("Content-Type") or "no content type").split(";")[0][:60]
        raise AnswerProblem(method, f"was not JSON ({kind}, {len(http_response.content)} bytes)") from exc
    code = data.get("code") if isinstance(data, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and code >= 400:  # kagglesdk: an error in a 200
        error = requests.HTTPError(str(data.get("message") or ""), response=http_response)
        error.kaggle_code = code
        raise error
    problem = _object_problem(response_type, data, "") or _missing(method, data)
    if problem:
        raise AnswerProblem(method, f"was malformed: {problem}")
    try:
        return response_type.from_dict(data)
    except Exception as exc:  # checked above; this is the SDK disagreeing with its own types
        raise AnswerProblem(method, f"was malformed: kagglesdk could not read it ({type(exc).__name__})") from exc


def _object_problem(cls: type, data, where: str) -> str | None:
    if not isinstance(data, dict):
        return f"{where or 'the answer'} should be a JSON object, not {_kind(data)}"
    for field in cls._fields:
        value = data.get(field.json_name)
        if value is None:  # left out: the default
            continue
        path = f"{where}.{field.json_name}" if where else field.json_name
        if isinstance(field.serializer, ListSerializer):
            if not isinstance(value, list):
                return f"{path} should be a list, not {_kind(value)}"
            items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        elif isinstance(field.serializer, MapSerializer):
            if not isinstance(value, dict):
                return f"{path} should be a JSON object, not {_kind(value)}"
            items = [(f"{path}.{key}", item) for key, item in value.items()]
        else:
            items = [(path, value)]
        for item_path, item in items:
            problem = _value_problem(field.field_type, item, item_path, field.json_name)
            if problem:
                return problem
    return None


def _value_problem(kind: type, value, where: str, name: str) -> str | None:
    if isinstance(kind, type) and issubclass(kind, KaggleObject):
        return _object_problem(kind, value, where)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        # The SDK matches names loosely (by suffix, even "" matches): what it gives must be a member.
        if not isinstance(value, str) or not isinstance(_parsed(EnumSerializer(), kind, value), kind):
            return f"{where} should be one of {', '.join(kind.__members__)}, not {_kind(value)}"
        return None
    if kind in _PARSERS:
        if not isinstance(value, str) or not isinstance(_parsed(_PARSERS[kind], kind, value), kind):
            return f"{where} should be a {'duration' if kind is timedelta else 'time'} string, not {_kind(value)}"
        return None
    if kind not in _WHAT:
        return None  # a type kjob never reads (field masks, bytes)
    fits = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
    if kind is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not fits:
        return f"{where} should be {_WHAT[kind]}, not {_kind(value)}"
    if kind is int and value < _LEAST.get(name, value):
        return f"{where} should be at least {_LEAST[name]}, not {value}"
    return None


def _parsed(serializer, kind: type, value: str):
    try:
        return serializer.from_dict_value(kind, value)
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, OverflowError):
        return None


def _missing(method: str, data: dict) -> str | None:
    for within, name in REQUIRED.get(method, []):
        items = [data] if within is None else (data.get(within) or [])
        for index, item in enumerate(items):
            if item.get(name) in (None, ""):
                where = f"{within}[{index}] has no {name}" if within else f"it has no {name}"
                return f"{where}, which kjob needs"
    return None


def _kind(value) -> str:
    """What a JSON value is, for messages; a short string is shown (credentials masked)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}" if len(str(value)) <= 20 else "a number"
    if isinstance(value, str):
        shown = redact(" ".join(value.split()))
        return f"the string {shown!r}" if len(shown) <= 40 else f"a string of {len(value)} characters"
    return "a list" if isinstance(value, list) else "a JSON object"
