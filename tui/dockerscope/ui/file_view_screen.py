"""Enter on a file in the layer contents: its bytes as that layer leaves them.

Text gets line numbers and syntax highlighting chosen by the file's name or its `#!` line (never
by guessing from the contents), binary data a hex dump with the type its magic bytes name. The
view makes a line only when it scrolls into sight, and highlighting follows the view in short
slices while the plain text is already shown, so a MiB of text or 65,000 hex lines open at once. File contents are
hostile: every line is sanitised (control characters, escape sequences and bidi marks shown as
escapes) and nothing is read as markup.
"""

from __future__ import annotations

import asyncio
import posixpath
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.util import ClassNotFound
from rich.cells import cell_len
from rich.style import Style
from rich.syntax import ANSI_DARK, ANSISyntaxTheme
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ContentsUnavailable,
    FileContents,
    FileNotReadable,
    FileVersion,
    ImageSource,
    ReadCancelled,
    read_file,
)
from dockerscope.ui.file_tree import mode_and_owner
from dockerscope.ui.format import human_size, plain
from dockerscope.ui.key_footer import KeyFooter
from dockerscope.ui.messages import Problem

TAB_SIZE = 8
# Longer lines are cut, with a note of how much was left out (a minified MiB is one line).
LINE_CHARS = 5000
HEX_WIDTH = 16
# How much of the start a text must decode from, and how many bad bytes it may hold.
BAD_BYTES_PER_MILLE = 10
# Highlighted lines reach the screen this often while the thread works.
# Texts this long or longer are split into lines in a thread (100 kB take about 5 ms).
PREPARE_IN_THREAD_FROM = 256 << 10
# Highlighting runs in slices of this many seconds, this far apart, this many lines past the view.
HIGHLIGHT_SLICE = 0.008
HIGHLIGHT_PAUSE = 0.004
HIGHLIGHT_MARGIN = 100

# Interpreters of `#!` lines and the Pygments lexer each stands for.
INTERPRETERS = {
    "sh": "bash",
    "bash": "bash",
    "dash": "bash",
    "ash": "bash",
    "ksh": "bash",
    "zsh": "zsh",
    "fish": "fish",
    "python": "python",
    "perl": "perl",
    "ruby": "ruby",
    "node": "javascript",
    "deno": "typescript",
    "php": "php",
    "lua": "lua",
    "tclsh": "tcl",
    "awk": "awk",
    "gawk": "awk",
    "pwsh": "powershell",
    "rscript": "r",
    "make": "make",
}

# Magic bytes: (offset, bytes, what they mean), first match wins.
MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x1f\x8b", "gzip compressed data"),
    (0, b"\x28\xb5\x2f\xfd", "Zstandard compressed data"),
    (0, b"BZh", "bzip2 compressed data"),
    (0, b"\xfd7zXZ\x00", "xz compressed data"),
    (0, b"\x04\x22\x4d\x18", "LZ4 compressed data"),
    (0, b"7z\xbc\xaf\x27\x1c", "7-zip archive"),
    (0, b"PK\x03\x04", "zip archive"),
    (0, b"PK\x05\x06", "zip archive (empty)"),
    (257, b"ustar", "tar archive"),
    (0, b"!<arch>\n", "ar archive (.deb, .a)"),
    (0, b"\xed\xab\xee\xdb", "RPM package"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG image"),
    (0, b"\xff\xd8\xff", "JPEG image"),
    (0, b"GIF87a", "GIF image"),
    (0, b"GIF89a", "GIF image"),
    (0, b"%PDF-", "PDF document"),
    (0, b"SQLite format 3\x00", "SQLite 3 database"),
    (0, b"\x00asm", "WebAssembly module"),
    (0, b"\xca\xfe\xba\xbe", "Java class file or Mach-O universal binary"),
    (0, b"\xcf\xfa\xed\xfe", "Mach-O 64-bit binary"),
    (0, b"\xce\xfa\xed\xfe", "Mach-O 32-bit binary"),
    (0, b"MZ", "DOS/Windows executable"),
    (0, b"TZif", "timezone data (TZif)"),
    (0, b"\xde\x12\x04\x95", "GNU message catalog (.mo)"),
    (0, b"\x95\x04\x12\xde", "GNU message catalog (.mo)"),
    (0, b"\x1a\x01", "compiled terminfo entry"),
    (0, b"\x1e\x02", "compiled terminfo entry"),
    (0, b"glibc-ld.so.cache", "ld.so cache"),
    (0, b"ld.so-1.7.0", "ld.so cache"),
)
JAVA_ARCHIVES = (".jar", ".war", ".ear")
ELF_CLASSES = {1: "32-bit", 2: "64-bit"}
ELF_ORDERS = {1: "LSB", 2: "MSB"}
ELF_TYPES = {1: "relocatable", 2: "executable", 3: "shared object or PIE executable", 4: "core file"}
ELF_MACHINES = {
    0x02: "SPARC",
    0x03: "x86",
    0x08: "MIPS",
    0x14: "PowerPC",
    0x15: "PowerPC64",
    0x16: "s390x",
    0x28: "ARM",
    0x2B: "SPARC V9",
    0x3E: "x86-64",
    0xB7: "AArch64",
    0xF3: "RISC-V",
    0x102: "LoongArch",
}


# Pure parts: what the bytes are, and the lines that show them.


def sniff_type(data: bytes, name: str = "") -> str | None:
    """What the first bytes say a file is ("ELF 64-bit LSB executable, x86-64", "gzip compressed
    data", "script (/bin/sh)"), or None when no magic is known."""
    if data.startswith(b"\x7fELF"):
        return _elf_type(data)
    if data.startswith(b"#!"):
        interpreter = data[2:].split(b"\n", 1)[0].strip().decode("utf-8", "replace")
        return f"script ({interpreter})" if interpreter else "script"
    for offset, magic, meaning in MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if meaning == "zip archive" and name.lower().endswith(JAVA_ARCHIVES):
                return "Java archive (zip)"
            if meaning == "PNG image" and len(data) >= 24 and data[12:16] == b"IHDR":
                width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
                return f"PNG image, {width} x {height}"
            return meaning
    return None


def _elf_type(data: bytes) -> str:
    parts = ["ELF"]
    if len(data) >= 6:
        parts.append(ELF_CLASSES.get(data[4], "unknown class"))
        parts.append(ELF_ORDERS.get(data[5], "unknown byte order"))
    order: Literal["big", "little"] = "big" if len(data) > 5 and data[5] == 2 else "little"
    if len(data) < 20:
        return " ".join(parts)
    kind = ELF_TYPES.get(int.from_bytes(data[16:18], order), "file of unknown type")
    machine = int.from_bytes(data[18:20], order)
    return f"{' '.join(parts)} {kind}, {ELF_MACHINES.get(machine, f'machine {machine:#x}')}"


def looks_binary(data: bytes, truncated: bool = False) -> bool:
    """A NUL byte, or more than 1 % of bytes that are not UTF-8: show it as a hex dump. A
    character cut at the end of a truncated read does not count."""
    if b"\x00" in data:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        if truncated and error.start >= len(data) - 3 and error.end == len(data):
            return False
        bad = data.decode("utf-8", "replace").count("\ufffd") - data.count("\ufffd".encode())
        return bad * 1000 > len(data) * BAD_BYTES_PER_MILLE
    return False


def text_lines(data: bytes) -> list[str]:
    """The file's lines, decoded as UTF-8 with replacement, tabs expanded: line breaks as
    Pygments sees them (CRLF and a lone CR end a line), so highlighted lines match these."""
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.expandtabs(TAB_SIZE) if "\t" in line else line for line in lines]


def line_text(pieces: Sequence[tuple[str, Style | None]]) -> Text:
    """One line as shown: the pieces (tabs already expanded) sanitised, cut after LINE_CHARS."""
    text = Text(no_wrap=True, end="")
    room = LINE_CHARS
    for piece, style in pieces:
        if room <= 0:
            break
        text.append(sanitize(piece[:room]), style)
        room -= len(piece)
    if room < 0:
        text.append(f"… (+{-room:,} chars)", "dim")
    return text


def line_cells(line: str) -> int:
    """The width `line_text` gives a line, in cells."""
    if len(line) > LINE_CHARS:
        return line_text([(line, None)]).cell_len
    if line.isascii() and line.isprintable():
        return len(line)
    return cell_len(sanitize(line))


def hex_line(data: bytes, offset: int) -> str:
    """`00000010  7f 45 4c 46 02 01 01 00  00 00 00 00 00 00 00 00  |.ELF............|`"""
    chunk = data[offset : offset + HEX_WIDTH]
    left, right = chunk[:8].hex(" "), chunk[8:].hex(" ")
    shown = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in chunk)
    return f"{offset:08x}  {left:<23}  {right:<23}  |{shown}|"


def line_number(number: int, gutter: int) -> str:
    """`  7 │ `: a line number right-aligned in a gutter of `gutter` cells."""
    return f"{number:>{gutter - 3}d} │ "


def shebang_lexer(first_line: str) -> str | None:
    """The Pygments lexer a `#!` line names: `#!/usr/bin/env python3` -> python."""
    if not first_line.startswith("#!"):
        return None
    words = first_line[2:].split()
    if words and posixpath.basename(words[0]) == "env":
        words = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
    if not words:
        return None
    name = posixpath.basename(words[0]).lower().rstrip("0123456789.")
    return INTERPRETERS.get(name)


def choose_lexer(name: str, first_line: str) -> tuple[Lexer, str] | None:
    """A lexer for the file, by its name and failing that by its `#!` line, and why; None for
    plain text. Never guesses from the contents."""
    options = {"stripnl": False, "ensurenl": True, "tabsize": 0}
    try:
        lexer = get_lexer_for_filename(name, **options)
        if lexer.name != "Text only":
            return lexer, "by name"
    except ClassNotFound:
        pass
    alias = shebang_lexer(first_line)
    if alias is None:
        return None
    try:
        return get_lexer_by_name(alias, **options), "by #!"
    except ClassNotFound:
        return None


def warm_up_lexers() -> None:
    """Pygments' first lookup imports its plugins and lexers, about 0.2 s: done in a thread while
    the user looks at a layer, the first file opens without it."""
    choose_lexer("warm-up.py", "")


def highlight(lexer: Lexer, lines: Sequence[str]) -> Iterator[Text]:
    """The lines as `lexer` colours them, one Text per line of `lines`, in order. Stops where the
    lexer's text strays from the lines (the rest stays plain)."""
    theme = ANSISyntaxTheme(ANSI_DARK)
    styles: dict[object, Style] = {}
    pieces: list[tuple[str, Style | None]] = []
    made = 0
    for token, value in lexer.get_tokens("\n".join(lines)):
        style = styles.get(token)
        if style is None:
            style = styles[token] = theme.get_style_for_token(token)
        for number, part in enumerate(value.split("\n")):
            if number:
                if made >= len(lines) or "".join(piece for piece, _ in pieces) != lines[made]:
                    return
                yield line_text(pieces)
                made += 1
                pieces = []
            if part:
                pieces.append((part, style))


class LineSource(Protocol):
    """What a ContentView shows: `count` lines, the widest `width` cells, each made on demand."""

    count: int
    width: int
    gutter: int

    def line(self, index: int) -> Text: ...


class TextLines:
    """A text file's lines with line numbers; `highlighted` fills from a thread. `name` (the file's
    base name) chooses the highlighting."""

    def __init__(self, lines: list[str], name: str = "") -> None:
        self.lines = lines
        self.name = name
        self.count = len(lines)
        self.width = max((line_cells(line) for line in lines), default=0)
        self.gutter = len(str(max(self.count, 1))) + 3
        self.highlighted: list[Text] = []
        self.lexer: Lexer | None = None
        # Yields the highlighted lines after those in `highlighted`; None when done or failed.
        self.highlighter: Iterator[Text] | None = None

    def line(self, index: int) -> Text:
        body: Text = (
            self.highlighted[index] if index < len(self.highlighted) else line_text([(self.lines[index], None)])
        )
        return Text.assemble((line_number(index + 1, self.gutter), "dim"), body, no_wrap=True, end="")


class HexLines:
    """A hex dump: 16 bytes a line, made when shown."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.count = (len(data) + HEX_WIDTH - 1) // HEX_WIDTH
        self.width = len(hex_line(b"\x00" * HEX_WIDTH, 0))
        self.gutter = 0

    def line(self, index: int) -> Text:
        shown = hex_line(self.data, index * HEX_WIDTH)
        return Text.assemble((shown[:8], "dim"), shown[8:], no_wrap=True, end="")


# Widgets.


class ContentView(ScrollView, can_focus=True):
    """Lines of a LineSource, made as they scroll into view; never wrapped. Line numbers stay put
    when scrolling sideways.

    Highlighting runs on the event loop in slices of a few milliseconds, only as far as the lines
    on screen and a margin below them: a lexing thread would hold the interpreter lock against the
    loop (a second of delay before the first frame of a MiB of Python), and lexing a whole MiB
    costs seconds that a look at its first page does not need. The lexer is found in a thread
    (Pygments' first lookup imports its plugins)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: LineSource = HexLines(b"")
        self._strips: LRUCache[int, Strip] = LRUCache(1024)
        self._step_timer: Timer | None = None

    def show(self, lines: LineSource) -> None:
        self.lines = lines
        self._strips.clear()
        self.virtual_size = Size(lines.gutter + lines.width, lines.count)
        self.scroll_to(0, 0, animate=False)
        self.refresh()
        if isinstance(lines, TextLines) and lines.count and lines.lexer is None:
            self.call_after_refresh(self._find_lexer, lines)
        elif isinstance(lines, TextLines) and lines.highlighter is not None:
            self._highlight_step()  # shown before (text, hex, text again): it goes on where it was

    def shown_lines(self) -> list[str]:
        """The lines on screen, as plain text (for tests and benchmarks)."""
        return [self.render_line(y).text for y in range(self.size.height)]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        style = self.rich_style
        if index >= self.lines.count:
            return Strip.blank(width, style)
        strip = self._strips.get(index)
        if strip is None:
            text = self.lines.line(index)
            strip = Strip(text.render(self.app.console), text.cell_len).apply_style(style)
            self._strips[index] = strip
        gutter = self.lines.gutter
        if not gutter:
            return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, index)
        numbers = strip.crop(0, gutter)
        body = strip.crop_extend(gutter + scroll_x, gutter + scroll_x + max(width - gutter, 0), style)
        return Strip.join([numbers, body]).apply_offsets(scroll_x, index)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    @work(thread=True, exclusive=True, group="lexer")
    def _find_lexer(self, lines: TextLines) -> None:
        chosen = choose_lexer(lines.name, lines.lines[0])
        if chosen is not None and not get_current_worker().is_cancelled:
            self.post_message(LexerChosen(lines, *chosen))

    def on_lexer_chosen(self, message: LexerChosen) -> None:
        lines = message.lines
        lines.lexer, lines.highlighter = message.lexer, highlight(message.lexer, lines.lines)
        if lines is self.lines:
            self._highlight_step()

    def _highlight_step(self) -> None:
        """Lex for up to HIGHLIGHT_SLICE seconds, until the lines in view and a margin are done."""
        self._step_timer = None
        lines = self.lines
        if not isinstance(lines, TextLines) or lines.highlighter is None:
            return
        highlighter = lines.highlighter
        wanted = min(self.scroll_offset.y + self.size.height + HIGHLIGHT_MARGIN, lines.count)
        done = first = len(lines.highlighted)
        deadline = time.perf_counter() + HIGHLIGHT_SLICE
        try:
            while done < wanted and time.perf_counter() < deadline:
                lines.highlighted.append(next(highlighter))
                done += 1
        except Exception:  # the end of the lines, or a lexer failing on hostile text: the rest stays plain
            lines.highlighter = None
        for index in range(first, done):
            self._strips.discard(index)
        if done > first:
            self.refresh()
        if lines.highlighter is not None and done < wanted:
            self._step_timer = self.set_timer(HIGHLIGHT_PAUSE, self._highlight_step)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        lines = self.lines
        if isinstance(lines, TextLines) and lines.highlighter is not None and self._step_timer is None:
            self._highlight_step()


@dataclass
class LexerChosen(Message):
    """The lexer for a text on show, and why it was chosen (`by name`, `by #!`)."""

    lines: TextLines
    lexer: Lexer
    why: str


@dataclass(frozen=True)
class FileRequest:
    """Which file version to show: `version` located as of a layer; `removed_in` is the layer that
    removed the path asked for, when the view shows the last version before that removal."""

    image_id: str
    version: FileVersion
    layer_count: int
    written_by: str = ""
    container_id: str | None = None
    removed_in: int | None = None


def mib(size: int) -> str:
    value = size / (1 << 20)
    return f"{value:.1f} MiB" if value < 100 else f"{value:.0f} MiB"


def _retrieve(task: asyncio.Task[FileContents]) -> None:
    """Take a read's outcome even when the screen closed before it came: the worker that awaited
    it was cancelled with the screen, and Python would log an exception nobody asked for."""
    if not task.cancelled():
        task.exception()


class FileViewScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back / cancel", id="file.close"),
        Binding("h", "toggle_hex", "Hex dump ↔ text", id="file.hex"),
    ]

    def __init__(self, source: ImageSource, request: FileRequest) -> None:
        super().__init__()
        self._source = source
        self._request = request
        self._cancel = threading.Event()
        self._contents: FileContents | None = None
        self._text: TextLines | None = None
        self._hex: HexLines | None = None
        self._binary = False
        self._hex_shown = False
        self._language = ""
        self._file_name = posixpath.basename(request.version.path)
        # The read starts now, in its thread, while the screen is made and shown.
        self._reading = asyncio.get_running_loop().create_task(
            read_file(source, request.image_id, request.version, container_id=request.container_id, cancel=self._cancel)
        )
        self._reading.add_done_callback(_retrieve)

    def compose(self) -> ComposeResult:
        yield Static(id="file-title")
        yield Static(Text.assemble(("reading the file… ", "bold"), ("Esc cancels", "dim")), id="file-loading")
        yield ContentView(id="file-body")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#file-title", Static).update(self._title())
        self.query_one(ContentView).display = False
        self._read()

    def on_unmount(self) -> None:
        self._cancel.set()
        self._reading.cancel()

    @work(group="file", exclusive=True)
    async def _read(self) -> None:
        try:
            contents = await self._reading
            binary = looks_binary(contents.data, contents.truncated)
            if not binary and len(contents.data) > PREPARE_IN_THREAD_FROM:
                self._text = await asyncio.to_thread(self._text_of, contents.data)
            elif not binary:
                self._text = self._text_of(contents.data)
        except ReadCancelled:
            return
        except Exception as error:  # any failure is told; a worker that raises would end the app
            self._fail(error)
            return
        if self._cancel.is_set() or not self.query(ContentView):
            return  # the screen closed (or the app quits) while the file was read
        self._contents, self._binary, self._hex_shown = contents, binary, binary
        self.query_one("#file-loading").display = False
        view = self.query_one(ContentView)
        view.display = True
        self._show()
        self.set_focus(view)

    def _text_of(self, data: bytes) -> TextLines:
        return TextLines(text_lines(data), self._file_name)

    def _fail(self, error: Exception) -> None:
        if isinstance(error, FileNotReadable | ContentsUnavailable):
            message = str(error)
        else:
            problem = Problem.of(error)
            message = f"{problem.headline}: {problem.reason}"
        title = (
            "No contents to show"
            if isinstance(error, FileNotReadable)
            else "File contents cannot be read here"
            if isinstance(error, ContentsUnavailable)
            else "Could not read the file"
        )
        self.app.notify(sanitize(message, max_chars=400), title=title, severity="error", markup=False)
        self.dismiss()

    def _show(self) -> None:
        contents = self._contents
        if contents is None:
            return
        view = self.query_one(ContentView)
        if self._hex_shown:
            self._hex = self._hex or HexLines(contents.data)
            view.show(self._hex)
        else:
            self._text = self._text or self._text_of(contents.data)
            view.show(self._text)
        self.query_one("#file-title", Static).update(self._title())

    def on_lexer_chosen(self, message: LexerChosen) -> None:
        self._language = f"{message.lexer.name} ({message.why})"
        self.query_one("#file-title", Static).update(self._title())

    def _title(self) -> Text:
        request, contents = self._request, self._contents
        version = request.version
        text = Text.assemble(plain("/" + version.asked, style="bold", max_chars=300))
        text.append(f" · as of layer {version.as_of + 1} of {request.layer_count}", style="bold")
        if request.removed_in is not None:
            text.append(f", the last version before layer {request.removed_in + 1:d} removed it", style="yellow")
        text.append(f" (written by layer {version.layer + 1}")
        if request.written_by:
            text.append(" · ")
            text.append_text(plain(request.written_by.strip(), style="cyan", max_chars=300))
        text.append(")")
        entry = version.entry
        text.append(f"\n{human_size(entry.size)} ({entry.size:,} bytes) · ")
        text.append(mode_and_owner(entry, " · "))
        if contents is not None:
            text.append(" · ")
            text.append_text(plain(self._kind(contents), max_chars=160))
            text.append(f" · read from {sanitize(contents.source, max_chars=60)} in {contents.seconds:.2f} s", "dim")
        if version.followed:
            text.append("\nsymlinks followed: ", style="dim")
            text.append_text(plain(", ".join(version.followed), max_chars=400))
        if version.member != version.path:
            text.append("\nhard link to ", style="dim")
            text.append_text(plain("/" + version.member, max_chars=300))
            text.append(": the bytes it shares", style="dim")
        if contents is not None and contents.truncated:
            text.append(f"\nshowing the first {mib(len(contents.data))} of {mib(contents.size)}", style="yellow")
        return text

    def _kind(self, contents: FileContents) -> str:
        """`binary: ELF 64-bit LSB executable, x86-64`, `text · Python (by name)`."""
        magic = sniff_type(contents.data, self._file_name)
        if self._binary:
            kind = f"binary: {magic or 'data'}"
            return kind + (" · shown as text" if not self._hex_shown else "")
        kind = "text"
        if self._language:
            kind += f" · {self._language}"
        if contents.data.startswith(b"\xef\xbb\xbf"):
            kind += " · UTF-8 BOM"
        return kind + (" · shown as hex" if self._hex_shown else "")

    # Keys.

    def action_close(self) -> None:
        if self._contents is None:
            self._cancel.set()
        self.dismiss()

    def action_toggle_hex(self) -> None:
        if self._contents is not None:
            self._hex_shown = not self._hex_shown
            self._show()
