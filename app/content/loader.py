"""Load, check and render everything under ``modules/`` (plus an optional clinic overlay).

One pass does both jobs: :func:`check_content` returns every problem with its file and
line so writers can fix them all at once, and :func:`load_library` returns the parsed
library or raises :class:`ContentError` with those same problems. The service loads the
library once at start-up and never reads content files again.

Module pages are rendered to HTML here with markdown-it-py in CommonMark mode with raw
HTML disabled, so content can never inject markup or script. A page body is cut at each
``[[exercise:<id>]]`` marker into :class:`~app.content.schemas.PageSegment` objects: the
template renders ``segment.html`` and then, when ``segment.exercise_id`` is set, the form of
that exercise. Exercises with no marker are listed in ``Module.unplaced_exercises`` and go
after the last page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.content.schemas import (
    PROGRAM_SLUGS,
    ExerciseSpec,
    Instrument,
    InstrumentItem,
    Module,
    ModuleFrontMatter,
    Option,
    Page,
    PageSegment,
    Program,
    ProgramFile,
    Wording,
)
from app.programs.exercises import EXERCISE_TYPES
from app.questionnaires.scoring import score_range

MIN_PAGES = 3
MIN_WORDS = 600
SAFETY_NET_INSTRUMENT = "phq9"
"""Asked weekly in every program: its self-harm item is the platform's safety net."""

INSTRUMENTS_DIR = "instruments"
MODULE_STEM = re.compile(r"^(\d{2})-[a-z0-9]+(-[a-z0-9]+)*$")
MARKER_LINE = re.compile(r"^\s*\[\[exercise:([^\]\s]*)\]\]\s*$")
ANY_MARKER = re.compile(r"\[\[\s*exercise\b", re.IGNORECASE)
WORD = re.compile("[^\\W_]+(?:['\u2019-][^\\W_]+)*")
QUESTION_TYPES = frozenset({"free_text", "rating"})

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str, ...]


# --- problems -------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class ContentProblem:
    """One thing wrong with the content, located to a file and a 1-based line."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ContentError(Exception):
    """Content failed its checks; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[ContentProblem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(str(p) for p in self.problems[:20])
        more = len(self.problems) - 20
        suffix = f"\n… and {more} more" if more > 0 else ""
        super().__init__(f"{len(self.problems)} content problem(s):\n{shown}{suffix}")


# --- the library ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ContentLibrary:
    """Every program (in the fixed slug order) and every instrument, validated."""

    programs: dict[str, Program]
    instruments: dict[str, Instrument]

    def program(self, slug: str) -> Program:
        return self.programs[slug]

    def module(self, slug: str, key: str) -> Module:
        return self.programs[slug].modules[key]

    def instrument(self, code: str) -> Instrument:
        return self.instruments[code]


def load_library(root: Path, overlay: Path | None = None) -> ContentLibrary:
    """Parse and validate all content under ``root``; raise ContentError on any problem."""
    checker = _Checker(root, overlay)
    library = checker.run()
    if checker.problems:
        raise ContentError(sorted(checker.problems))
    return library


def load_instruments(root: Path, overlay: Path | None = None) -> dict[str, Instrument]:
    """Only the questionnaires (shipped plus overlay); raise ContentError on their problems."""
    checker = _Checker(root, overlay)
    instruments = checker.instruments()
    if checker.problems:
        raise ContentError(sorted(checker.problems))
    return instruments


def check_content(root: Path, overlay: Path | None = None) -> list[ContentProblem]:
    """Every problem in the content under ``root`` (and ``overlay``), sorted by file and line."""
    checker = _Checker(root, overlay)
    checker.run()
    return sorted(checker.problems)


# --- YAML with line numbers -------------------------------------------------------------------


@dataclass
class _Yaml:
    """A parsed YAML document and the line of every key and list entry in it."""

    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, *loc: object) -> int:
        """Line of the deepest known prefix of ``loc`` (a missing key points at its parent)."""
        path = tuple(str(part) for part in loc)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)


def _walk(
    node: yaml.Node, path: Loc, offset: int, out: _Yaml, duplicates: list[tuple[int, str]]
) -> None:
    out.lines.setdefault(path, node.start_mark.line + 1 + offset)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                duplicates.append((key_node.start_mark.line + 1 + offset, key))
            seen.add(key)
            out.lines[(*path, key)] = key_node.start_mark.line + 1 + offset
            _walk(value_node, (*path, key), offset, out, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            _walk(child, (*path, str(index)), offset, out, duplicates)


def _friendly(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


# --- the checker ------------------------------------------------------------------------------


class _InstrumentOverlayItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=500)
    options: dict[int, str] | None = None


class _InstrumentOverlay(BaseModel):
    """A clinic's wording for a shipped instrument: texts only, never structure."""

    model_config = ConfigDict(extra="forbid")

    code: str
    wording: Wording = "official"
    title: str | None = Field(default=None, min_length=1, max_length=120)
    recall: str | None = None
    source: str | None = None
    options: dict[int, str] | None = None
    items: dict[str, str | _InstrumentOverlayItem] = Field(default_factory=dict)


class _Checker:
    def __init__(self, root: Path, overlay: Path | None) -> None:
        self.root = root
        self.overlay = overlay
        self.problems: list[ContentProblem] = []
        self.markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

    def problem(self, path: Path, line: int, message: str) -> None:
        self.problems.append(ContentProblem(path, max(line, 1), message))

    # -- entry ------------------------------------------------------------------------------

    def run(self) -> ContentLibrary:
        if not self.root.is_dir():
            self.problem(self.root, 1, "content folder not found")
            return ContentLibrary({}, {})
        instruments = self.instruments()
        programs: dict[str, Program] = {}
        for slug in PROGRAM_SLUGS:
            folder = self.root / slug
            if folder.is_dir():
                program = self.load_program(folder, instruments)
                if program is not None:
                    programs[slug] = program
        known = {*PROGRAM_SLUGS, INSTRUMENTS_DIR}
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and entry.name not in known and not entry.name.startswith("."):
                self.problem(entry, 1, f"unknown folder; programs are: {', '.join(PROGRAM_SLUGS)}")
        return ContentLibrary(programs, instruments)

    def instruments(self) -> dict[str, Instrument]:
        instruments = self.load_instruments(self.root / INSTRUMENTS_DIR)
        if self.overlay is not None:
            instruments = self.apply_overlay(instruments, self.overlay / INSTRUMENTS_DIR)
        return instruments

    # -- shared parsing ---------------------------------------------------------------------

    def read(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            self.problem(path, 1, "not UTF-8 text")
        except OSError as exc:
            self.problem(path, 1, f"cannot read: {exc.strerror}")
        return None

    def parse_yaml(self, path: Path, text: str, offset: int = 0) -> _Yaml | None:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 + offset if mark is not None else 1 + offset
            self.problem(path, line, f"YAML syntax: {exc.problem or exc.context}")
            return None
        except yaml.YAMLError as exc:
            self.problem(path, 1 + offset, f"YAML: {exc}")
            return None
        finally:
            loader.dispose()
        parsed = _Yaml(data)
        if node is None:
            parsed.lines[()] = 1 + offset
            return parsed
        duplicates: list[tuple[int, str]] = []
        _walk(node, (), offset, parsed, duplicates)
        for line, key in duplicates:
            self.problem(path, line, f"duplicate key {key!r}")
        return parsed

    def validate(self, model: type[M], path: Path, doc: _Yaml) -> M | None:
        if not isinstance(doc.data, Mapping):
            self.problem(path, doc.line(), "expected a mapping of keys to values")
            return None
        try:
            return model.model_validate(doc.data)
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(str(part) for part in error["loc"])
                where = ".".join(loc)
                message = _friendly(error["msg"])
                self.problem(path, doc.line(*loc), f"{where}: {message}" if where else message)
            return None

    # -- instruments ------------------------------------------------------------------------

    def load_instruments(self, folder: Path) -> dict[str, Instrument]:
        found: dict[str, Instrument] = {}
        if not folder.is_dir():
            return found
        for path in sorted(folder.iterdir()):
            if path.suffix not in (".yaml", ".yml"):
                continue
            text = self.read(path)
            doc = self.parse_yaml(path, text) if text is not None else None
            instrument = self.validate(Instrument, path, doc) if doc is not None else None
            if instrument is None or doc is None:
                continue
            if instrument.code != path.stem:
                self.problem(
                    path, doc.line("code"), f"code {instrument.code!r} must match file name"
                )
                continue
            if self.check_instrument(path, doc, instrument):
                found[instrument.code] = instrument
        return found

    def check_instrument(self, path: Path, doc: _Yaml, instrument: Instrument) -> bool:
        before = len(self.problems)
        ids = [item.id for item in instrument.items]
        for index, item_id in enumerate(ids):
            if item_id in ids[:index]:
                self.problem(path, doc.line("items", index, "id"), f"duplicate item id {item_id!r}")
        self.check_options(path, doc, ("options",), instrument.options)
        for index, item in enumerate(instrument.items):
            if item.options is None and instrument.options is None:
                self.problem(path, doc.line("items", index), f"{item.id}: no options")
            self.check_options(path, doc, ("items", str(index), "options"), item.options)
        if len(self.problems) > before:
            return False

        low, high = score_range(instrument)
        scoring = instrument.scoring
        if (scoring.min, scoring.max) != (low, high):
            self.problem(
                path,
                doc.line("scoring"),
                f"scoring range {scoring.min}..{scoring.max} does not match the options, "
                f"which give {low}..{high}",
            )
        self.check_bands(path, doc, instrument)
        if instrument.reliable_change > scoring.max - scoring.min:
            self.problem(path, doc.line("reliable_change"), "reliable_change exceeds the range")
        for index in range(len(instrument.risk)):
            self.check_risk_rule(path, doc, instrument, index)
        for name, item_ids in instrument.subscales.items():
            unknown = [i for i in item_ids if i not in ids]
            if unknown:
                self.problem(
                    path, doc.line("subscales", name), f"subscale {name}: unknown items {unknown}"
                )
            if not item_ids or len(set(item_ids)) != len(item_ids):
                self.problem(
                    path, doc.line("subscales", name), f"subscale {name}: empty or repeats items"
                )
        return len(self.problems) == before

    def check_options(
        self, path: Path, doc: _Yaml, loc: Loc, options: Sequence[Option] | None
    ) -> None:
        if options is None:
            return
        values = [option.value for option in options]
        for index, value in enumerate(values):
            if value in values[:index]:
                self.problem(path, doc.line(*loc, index), f"duplicate option value {value}")

    def check_bands(self, path: Path, doc: _Yaml, instrument: Instrument) -> None:
        scoring = instrument.scoring
        expected = scoring.min
        order = sorted(range(len(instrument.bands)), key=lambda i: instrument.bands[i].min)
        for index in order:
            band = instrument.bands[index]
            line = doc.line("bands", index)
            if band.min > band.max:
                self.problem(path, line, f"band {band.label!r}: min is above max")
            if band.min > expected:
                self.problem(
                    path, line, f"bands leave a gap: {expected}..{band.min - 1} is in no band"
                )
            elif band.min < expected:
                self.problem(path, line, f"band {band.label!r} overlaps the band before it")
            expected = max(expected, band.max + 1)
        if expected <= scoring.max:
            self.problem(
                path, doc.line("bands"), f"bands stop at {expected - 1}, below max {scoring.max}"
            )
        elif expected > scoring.max + 1:
            self.problem(path, doc.line("bands"), f"bands go past max {scoring.max}")
        labels = [band.label for band in instrument.bands]
        if len(set(labels)) != len(labels):
            self.problem(path, doc.line("bands"), "band labels repeat")

    def check_risk_rule(self, path: Path, doc: _Yaml, instrument: Instrument, index: int) -> None:
        rule = instrument.risk[index]
        line = doc.line("risk", index)
        if rule.item is None:
            low, high = instrument.scoring.min, instrument.scoring.max
            if not low < rule.min_value <= high:
                self.problem(path, line, f"risk on the total needs min_value in {low + 1}..{high}")
            return
        try:
            item = instrument.item(rule.item)
        except KeyError:
            self.problem(path, doc.line("risk", index, "item"), f"risk: unknown item {rule.item!r}")
            return
        values = sorted(option.value for option in instrument.item_options(item))
        if rule.min_value not in values[1:]:
            self.problem(
                path,
                doc.line("risk", index, "min_value"),
                f"risk on {item.id}: min_value must be one of {values[1:]}",
            )

    def apply_overlay(
        self, instruments: dict[str, Instrument], folder: Path
    ) -> dict[str, Instrument]:
        merged = dict(instruments)
        if not folder.is_dir():
            return merged
        for path in sorted(folder.iterdir()):
            if path.suffix not in (".yaml", ".yml"):
                continue
            text = self.read(path)
            doc = self.parse_yaml(path, text) if text is not None else None
            overlay = self.validate(_InstrumentOverlay, path, doc) if doc is not None else None
            if overlay is None or doc is None:
                continue
            if overlay.code != path.stem:
                self.problem(path, doc.line("code"), f"code {overlay.code!r} must match file name")
                continue
            base = instruments.get(overlay.code)
            if base is None:
                self.problem(path, doc.line("code"), f"no shipped instrument {overlay.code!r}")
                continue
            result = self.merge_overlay(path, doc, base, overlay)
            if result is not None:
                merged[overlay.code] = result
        return merged

    def merge_overlay(
        self, path: Path, doc: _Yaml, base: Instrument, overlay: _InstrumentOverlay
    ) -> Instrument | None:
        before = len(self.problems)
        shared = base.options
        if overlay.options is not None:
            if shared is None:
                self.problem(path, doc.line("options"), "this instrument has no shared options")
            else:
                shared = self.relabel(path, doc, ("options",), shared, overlay.options)
        items: list[InstrumentItem] = []
        known = {item.id for item in base.items}
        for item_id in overlay.items:
            if item_id not in known:
                self.problem(path, doc.line("items", item_id), f"unknown item {item_id!r}")
        for item in base.items:
            given = overlay.items.get(item.id)
            entry = _InstrumentOverlayItem(text=given) if isinstance(given, str) else given
            if entry is None:
                if overlay.wording == "official":
                    self.problem(path, doc.line("items"), f"{item.id}: no official text")
                items.append(item)
                continue
            update: dict[str, Any] = {}
            if entry.text is not None:
                update["text"] = entry.text
            if entry.options is not None:
                own = base.item_options(item)
                update["options"] = self.relabel(
                    path, doc, ("items", item.id, "options"), own, entry.options
                )
            items.append(item.model_copy(update=update))
        if len(self.problems) > before:
            return None
        update_base: dict[str, Any] = {"wording": overlay.wording, "items": items}
        update_base["options"] = shared
        for name in ("title", "recall", "source"):
            value = getattr(overlay, name)
            if value is not None:
                update_base[name] = value
        return base.model_copy(update=update_base)

    def relabel(
        self, path: Path, doc: _Yaml, loc: Loc, options: Sequence[Option], labels: dict[int, str]
    ) -> list[Option]:
        values = {option.value for option in options}
        if set(labels) != values:
            self.problem(
                path,
                doc.line(*loc),
                f"option values {sorted(labels)} must match the shipped values {sorted(values)}",
            )
            return list(options)
        return [Option(value=o.value, label=labels[o.value]) for o in options]

    # -- programs ---------------------------------------------------------------------------

    def load_program(self, folder: Path, instruments: Mapping[str, Instrument]) -> Program | None:
        path = folder / "program.yaml"
        if not path.is_file():
            self.problem(path, 1, "missing program.yaml")
            return None
        text = self.read(path)
        doc = self.parse_yaml(path, text) if text is not None else None
        spec = self.validate(ProgramFile, path, doc) if doc is not None else None
        if spec is None or doc is None:
            return None
        before = len(self.problems)
        if spec.slug != folder.name:
            self.problem(path, doc.line("slug"), f"slug {spec.slug!r} must match folder name")
        self.check_program_instruments(path, doc, spec, instruments)

        modules: dict[str, Module] = {}
        last_number = -1
        for index, key in enumerate(spec.modules):
            line = doc.line("modules", index)
            match = MODULE_STEM.match(key)
            if match is None:
                self.problem(path, line, f"module {key!r}: name must look like 01-some-title")
                continue
            if key in spec.modules[:index]:
                self.problem(path, line, f"module {key!r} is listed twice")
                continue
            number = int(match.group(1))
            if number <= last_number:
                self.problem(path, line, f"module {key!r}: numbers must increase down the list")
            last_number = max(last_number, number)
            module_path = folder / f"{key}.md"
            if not module_path.is_file():
                self.problem(path, line, f"module file {module_path.name} not found")
                continue
            module = self.load_module(module_path, key, number)
            if module is not None:
                modules[key] = module
        for stray in sorted(folder.glob("*.md")):
            if stray.stem not in spec.modules:
                self.problem(stray, 1, "module file not listed in program.yaml")
        if len(self.problems) > before:
            return None
        return Program(**spec.model_dump(exclude={"modules"}), modules=modules)

    def check_program_instruments(
        self, path: Path, doc: _Yaml, spec: ProgramFile, instruments: Mapping[str, Instrument]
    ) -> None:
        for group in ("weekly", "baseline_and_end"):
            for index, code in enumerate(getattr(spec.instruments, group)):
                if code not in instruments:
                    self.problem(
                        path,
                        doc.line("instruments", group, index),
                        f"instrument {code!r} not found in {INSTRUMENTS_DIR}/",
                    )
        if SAFETY_NET_INSTRUMENT not in spec.instruments.weekly:
            self.problem(
                path,
                doc.line("instruments", "weekly"),
                f"{SAFETY_NET_INSTRUMENT} must be asked weekly in every program "
                "(its self-harm item is the safety net)",
            )

    # -- modules ----------------------------------------------------------------------------

    def load_module(self, path: Path, key: str, number: int) -> Module | None:
        text = self.read(path)
        if text is None:
            return None
        lines = text.splitlines()
        if not lines or lines[0].strip() != "---":
            self.problem(path, 1, "a module starts with a '---' line and YAML front matter")
            return None
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            self.problem(path, 1, "front matter is not closed with a '---' line")
            return None
        doc = self.parse_yaml(path, "\n".join(lines[1:end]), offset=1)
        front = self.validate(ModuleFrontMatter, path, doc) if doc is not None else None
        if front is None or doc is None:
            return None
        before = len(self.problems)
        self.check_exercises(path, doc, front.exercises)
        pages = self.parse_pages(path, lines[end + 1 :], end + 2, front.exercises)
        words = sum(page.words for page in pages)
        if len(pages) < MIN_PAGES:
            self.problem(
                path, end + 2, f"{len(pages)} page(s); a module needs at least {MIN_PAGES}"
            )
        if words < MIN_WORDS:
            self.problem(path, end + 2, f"{words} words of prose; a module needs {MIN_WORDS}")
        if len(self.problems) > before:
            return None
        return Module(
            key=key,
            number=number,
            title=front.title,
            minutes=front.minutes,
            summary=front.summary,
            exercises=front.exercises,
            pages=pages,
            words=words,
        )

    def check_exercises(self, path: Path, doc: _Yaml, exercises: Sequence[ExerciseSpec]) -> None:
        if not exercises:
            self.problem(path, doc.line("exercises"), "a module needs at least one exercise")
        seen: set[str] = set()
        for index, spec in enumerate(exercises):
            if spec.id in seen:
                self.problem(
                    path, doc.line("exercises", index, "id"), f"duplicate exercise id {spec.id!r}"
                )
            seen.add(spec.id)
            if spec.type not in EXERCISE_TYPES:
                self.problem(
                    path,
                    doc.line("exercises", index, "type"),
                    f"unknown exercise type {spec.type!r}; known: {', '.join(EXERCISE_TYPES)}",
                )
                continue
            if spec.type in QUESTION_TYPES and not spec.questions:
                self.problem(
                    path, doc.line("exercises", index), f"{spec.id}: {spec.type} needs questions"
                )
            if spec.type not in QUESTION_TYPES and spec.questions is not None:
                self.problem(
                    path,
                    doc.line("exercises", index, "questions"),
                    f"{spec.id}: questions only go on free_text and rating",
                )
            if spec.type != "rating" and spec.scale is not None:
                self.problem(
                    path,
                    doc.line("exercises", index, "scale"),
                    f"{spec.id}: scale only goes on rating",
                )

    def parse_pages(
        self, path: Path, body: list[str], first_line: int, exercises: Sequence[ExerciseSpec]
    ) -> list[Page]:
        """Cut the body at level-1 headings, render each page and place exercise markers."""
        tokens = self.markdown.parse("\n".join(body))
        starts: list[tuple[int, int, str]] = []
        for index, token in enumerate(tokens):
            if token.type == "heading_open" and token.tag == "h1" and token.level == 0:
                begin, stop = token.map or (0, 1)
                starts.append((begin, stop, _plain(tokens[index + 1])))
        leading = body[: starts[0][0]] if starts else body
        for offset, line in enumerate(leading):
            if line.strip():
                self.problem(
                    path, first_line + offset, "text before the first '# ' page heading is lost"
                )
                break

        known = {spec.id for spec in exercises}
        placed: dict[str, int] = {}
        pages: list[Page] = []
        for number, (begin, stop, title) in enumerate(starts, start=1):
            end = starts[number][0] if number < len(starts) else len(body)
            if not title:
                self.problem(path, first_line + begin, "page heading has no title")
            page_lines = body[stop:end]
            segments = self.page_segments(path, page_lines, first_line + stop, known, placed)
            prose = "\n".join(line for line in page_lines if not MARKER_LINE.match(line))
            pages.append(
                Page(
                    number=number,
                    title=title,
                    segments=segments,
                    words=len(WORD.findall(title)) + _words(self.markdown, prose),
                    line=first_line + begin,
                )
            )
        return pages

    def page_segments(
        self,
        path: Path,
        lines: list[str],
        first_line: int,
        known: set[str],
        placed: dict[str, int],
    ) -> list[PageSegment]:
        segments: list[PageSegment] = []
        chunk: list[str] = []
        for offset, line in enumerate(lines):
            line_no = first_line + offset
            match = MARKER_LINE.match(line)
            if match is None:
                if ANY_MARKER.search(line):
                    self.problem(
                        path,
                        line_no,
                        "an exercise marker must stand alone on its line as [[exercise:id]]",
                    )
                chunk.append(line)
                continue
            exercise_id = match.group(1)
            if exercise_id not in known:
                self.problem(path, line_no, f"marker names unknown exercise {exercise_id!r}")
            elif exercise_id in placed:
                self.problem(
                    path,
                    line_no,
                    f"exercise {exercise_id!r} is already placed on line {placed[exercise_id]}",
                )
            else:
                placed[exercise_id] = line_no
                segments.append(
                    PageSegment(
                        html=self.markdown.render("\n".join(chunk)), exercise_id=exercise_id
                    )
                )
                chunk = []
        if any(line.strip() for line in chunk) or not segments:
            segments.append(PageSegment(html=self.markdown.render("\n".join(chunk))))
        return segments


def _plain(token: Token) -> str:
    """Text of an inline token without its markup (for titles)."""
    children = token.children or []
    return "".join(c.content for c in children if c.type in ("text", "code_inline")).strip()


def _words(markdown: MarkdownIt, source: str) -> int:
    count = 0
    for token in markdown.parse(source):
        if token.type == "inline":
            for child in token.children or []:
                if child.type in ("text", "code_inline"):
                    count += len(WORD.findall(child.content))
    return count
