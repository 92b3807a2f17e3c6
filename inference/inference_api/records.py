"""Prediction requests: the record model, body and CSV parsing, and readable 422 messages.

Field names, bounds, categories and the error wording come from `forest_mlops.schema`: the
pydantic model is generated from it, and validation errors are reworded with the schema's own
checks, so the API says exactly what ingestion says about the same bad value.
"""

from __future__ import annotations

import csv
import io
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from forest_mlops import schema

# A real row of the UCI Covertype data (Spruce/Fir): the page's pre-filled example and the
# smoke record every new model version must predict before it is swapped in.
EXAMPLE_RECORD: dict[str, Any] = {
    "Elevation": 2862,
    "Aspect": 294,
    "Slope": 22,
    "Horizontal_Distance_To_Hydrology": 120,
    "Vertical_Distance_To_Hydrology": 18,
    "Horizontal_Distance_To_Roadways": 1273,
    "Hillshade_9am": 154,
    "Hillshade_Noon": 229,
    "Hillshade_3pm": 213,
    "Horizontal_Distance_To_Fire_Points": 1323,
    "Wilderness_Area": "Commanche",
    "Soil_Type": "C7757",
}

# Messages beyond this many are summarised: a 10,000-row batch of bad rows must not produce a
# multi-megabyte error body.
MAX_REPORTED_ERRORS = 50


def _numeric_field(column: str) -> Any:
    low, high = schema.NUMERIC_BOUNDS[column]
    return (Annotated[int, Field(ge=low, le=high)], ...)


def _reject_booleans(data: Any) -> Any:
    # pydantic's lax mode reads true/false as 1/0 for an int field; a boolean Elevation is a
    # client bug, not a measurement.
    if isinstance(data, dict):
        for column in schema.NUMERIC_COLUMNS:
            value = data.get(column)
            if isinstance(value, bool):
                try:
                    schema.parse_int(column, value)
                except schema.RecordError as exc:
                    raise PydanticCustomError("bool_value", str(exc), {"field": column}) from None
    return data


def _build_record_model() -> type[BaseModel]:
    fields: dict[str, Any] = {column: _numeric_field(column) for column in schema.NUMERIC_COLUMNS}
    accepted_areas = (*schema.WILDERNESS_AREAS, *schema.WILDERNESS_ALIASES)
    fields[schema.WILDERNESS_COLUMN] = (Literal[accepted_areas], ...)
    fields[schema.SOIL_COLUMN] = (Literal[schema.SOIL_TYPES], ...)
    validators: dict[str, Any] = {
        "reject_booleans": model_validator(mode="before")(_reject_booleans)
    }
    return create_model(
        "FeatureRecord",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __validators__=validators,
        __doc__=(
            "The 12 features of one location, named as in the course data. "
            f"{schema.WILDERNESS_COLUMN} also accepts "
            + ", ".join(f"{k!r} for {v!r}" for k, v in schema.WILDERNESS_ALIASES.items())
            + "."
        ),
        **fields,
    )


FeatureRecord = _build_record_model()
_records_adapter: TypeAdapter[list[Any]] = TypeAdapter(list[FeatureRecord])  # type: ignore[valid-type]
_row_getter = operator.attrgetter(*schema.FEATURE_COLUMNS)


class RequestError(Exception):
    """A request the service cannot predict on; `errors` lists each problem found."""

    def __init__(self, detail: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "errors": self.errors}


@dataclass(frozen=True)
class ParsedRequest:
    """Validated records as model-ready columns (Wilderness_Area in the course spelling)."""

    columns: dict[str, list[Any]]
    n_rows: int
    single: bool  # the body was one record, not a list


def to_columns(records: Sequence[Any]) -> dict[str, list[Any]]:
    rows = [_row_getter(r) for r in records]
    columns = dict(zip(schema.FEATURE_COLUMNS, map(list, zip(*rows, strict=True)), strict=True))
    aliases = schema.WILDERNESS_ALIASES
    columns[schema.WILDERNESS_COLUMN] = [
        aliases.get(v, v) for v in columns[schema.WILDERNESS_COLUMN]
    ]
    return columns


def example_columns() -> dict[str, list[Any]]:
    """EXAMPLE_RECORD as model-ready columns (the smoke record of every new model)."""
    return to_columns(_records_adapter.validate_python([EXAMPLE_RECORD]))


def parse_json_body(body: bytes, *, max_batch: int) -> ParsedRequest:
    """Validate a /predict body: one record (JSON object) or a list of them."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"the body is not valid JSON: {exc}") from None
    single = isinstance(data, dict)
    if single:
        data = [data]
    elif not isinstance(data, list):
        raise RequestError(
            "expected one record (a JSON object with the 12 feature fields) or a list of "
            f"records, got {_json_type(data)}"
        )
    _check_batch_size(len(data), max_batch)
    records = _validate(data, single=single, location=_record_location)
    return ParsedRequest(columns=to_columns(records), n_rows=len(records), single=single)


def parse_csv(text: str, *, max_batch: int) -> tuple[list[str], list[list[str]], ParsedRequest]:
    """Validate a CSV upload: a header naming the 12 feature columns, then one row a line.

    Other columns (an id, the true Cover_Type) are allowed and passed through to the result.
    Returns the header, the raw rows and the parsed request.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit
        raise RequestError(f"line {reader.line_num}: the CSV cannot be read: {exc}") from None
    if header is None or not any(h.strip() for h in header):
        raise RequestError("the CSV is empty: expected a header row naming the 12 feature columns")
    header = [h.strip() for h in header]
    missing = [c for c in schema.FEATURE_COLUMNS if c not in header]
    if missing:
        raise RequestError(f"the CSV header lacks the column(s): {', '.join(missing)}")
    if not rows:
        raise RequestError("the CSV has a header but no data rows")
    _check_batch_size(len(rows), max_batch)
    index = [header.index(c) for c in schema.FEATURE_COLUMNS]
    records: list[dict[str, Any]] = []
    for number, row in enumerate(rows):
        if len(row) != len(header):
            raise RequestError(
                f"line {number + 2}: {len(row)} values for {len(header)} header columns"
            )
        records.append(
            {c: row[i].strip() for c, i in zip(schema.FEATURE_COLUMNS, index, strict=True)}
        )
    validated = _validate(records, single=False, location=_csv_location)
    return header, rows, ParsedRequest(to_columns(validated), len(validated), single=False)


def _check_batch_size(n: int, max_batch: int) -> None:
    if n == 0:
        raise RequestError("the list of records is empty")
    if n > max_batch:
        raise RequestError(f"{n} records in one request; the maximum is {max_batch}")


def _record_location(index: int, single: bool) -> str:
    return "" if single else f"record {index}: "


def _csv_location(index: int, single: bool) -> str:
    return f"line {index + 2}: "  # line 1 is the header


def _validate(data: list[Any], *, single: bool, location: Any) -> list[Any]:
    try:
        return _records_adapter.validate_python(data)
    except ValidationError as exc:
        errors = [_describe(error, single, location) for error in exc.errors(include_url=False)]
        shown = errors[:MAX_REPORTED_ERRORS]
        count = len(errors)
        summary = "; ".join(e["message"] for e in shown[:5])
        more = f" (and {count - 5} more)" if count > 5 else ""
        detail = f"{count} invalid value(s): {summary}{more}"
        raise RequestError(detail, shown) from None


def _describe(error: Mapping[str, Any], single: bool, location: Any) -> dict[str, Any]:
    loc = error["loc"]
    index = loc[0] if loc and isinstance(loc[0], int) else 0
    field = str(loc[1]) if len(loc) > 1 else (error.get("ctx") or {}).get("field")
    where = location(index, single)
    out: dict[str, Any] = {"field": field, "message": where + _message(error, field)}
    if not single:
        out["record"] = index
    return out


def _message(error: Mapping[str, Any], field: str | None) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "bool_value":
        return str(error["msg"])
    if field is None:
        if kind == "model_type":
            return f"expected a JSON object with the 12 feature fields, got {_json_type(value)}"
        return str(error["msg"])
    if kind == "missing":
        return f"{field}: field required"
    if kind == "extra_forbidden":
        return f"{field}: unknown field (expected only the 12 feature columns)"
    # The schema's own checks word the message for a value they reject.
    try:
        if field in schema.NUMERIC_BOUNDS:
            schema.check_numeric(field, schema.parse_int(field, value))
        elif field == schema.WILDERNESS_COLUMN:
            schema.normalise_wilderness(value)
        elif field == schema.SOIL_COLUMN:
            schema.check_soil(value)
    except schema.RecordError as exc:
        return str(exc)
    return f"{field}: {error['msg']} (got {value!r})"


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
