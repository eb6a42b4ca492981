#!/usr/bin/env bash
# Mutation testing of the pure modules against the daemon-free tests (not part of CI):
#
#   bash scripts/mutation.sh                      # the five modules of [tool.mutmut] only_mutate
#   bash scripts/mutation.sh service/ci_rules     # some of them, as paths under dockerscope/
#
# mutmut maps only src/ paths to module names, so the tree is copied to mutants/ with the
# package under src/, and mutmut works in mutants/mutants/. The modules run one at a time with
# MUTMUT_CHILDREN workers (default 1). Prints killed/total per module, then the survivors; exits 1
# when a module kills less than MUTATION_MIN percent (default 90) of the mutants that are not
# listed as equivalent at the end of this file. `cd mutants && ../.venv/bin/mutmut show NAME`
# shows one mutant. Time, with nobody else on the machine's two cores: under 5 minutes for the
# first four modules; export_reader has about 1,330 mutants and takes over 20 minutes with 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
script=$PWD/scripts/mutation.sh

venv=$(cd "${DOCKERSCOPE_VENV:-.venv}" && pwd)
children=${MUTMUT_CHILDREN:-1}
minimum=${MUTATION_MIN:-90}
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(sanitize service/layers service/file_analysis service/ci_rules service/export_reader)

rm -rf mutants
mkdir -p mutants/src
cp -r tui/dockerscope mutants/src/dockerscope
cp -r tests mutants/tests
cp pyproject.toml mutants/
find mutants -name __pycache__ -prune -exec rm -rf {} +
cd mutants

# Without DOCKER_HOST no selected test can reach a daemon by mistake.
unset DOCKER_HOST
for module in "${modules[@]}"; do
    log="run-${module//\//-}.log"
    echo "mutmut: dockerscope/$module.py (log: mutants/$log)"
    if ! "$venv/bin/mutmut" run --max-children "$children" "dockerscope.${module//\//.}.*" >"$log" 2>&1; then
        tail -n 30 "$log"
        exit 1
    fi
done

"$venv/bin/mutmut" results --all true | "$venv/bin/python" -c '
import re
import sys

script, minimum, *modules = sys.argv[1:]
minimum = float(minimum)
# "# equivalent: PREFIX N N ..." lines below name the mutants PREFIX + N.
equivalent = set()
for line in open(script, encoding="utf-8"):
    if line.startswith("# equivalent: "):
        prefix, *numbers = line.split()[2:]
        equivalent.update(prefix + number for number in numbers)
wanted = ["dockerscope." + module.replace("/", ".") for module in modules]
counts = {module: [0, 0, 0] for module in wanted}  # killed, total, equivalent survivors
survivors, stale = [], set(name for name in equivalent if name.split(".x")[0] in counts)
for line in sys.stdin:
    name, _, status = line.strip().rpartition(": ")
    module = re.split(r"\.x[_\u01c1]", name, maxsplit=1)[0]
    if module not in counts:
        continue
    counts[module][1] += 1
    if status in ("killed", "timeout"):
        counts[module][0] += 1
    elif name in equivalent:
        counts[module][2] += 1
        stale.discard(name)
    else:
        survivors.append(f"{status}: {name}")
failed = False
print("%-36s %13s %8s %10s %8s" % ("module", "killed/total", "", "equivalent", "the rest"))
for module, (killed, total, same) in counts.items():
    percent = 100 * killed / total if total else 100.0
    rest = 100 * killed / (total - same) if total - same else 100.0
    failed |= rest < minimum
    print("%-36s %6d/%-6d %6.1f %% %10d %6.1f %%" % (module, killed, total, percent, same, rest))
for line in survivors:
    print(line)
for name in sorted(stale):
    print(f"listed as equivalent but killed or gone (update the list): {name}")
sys.exit(1 if failed else 0)
' "$script" "$minimum" "${modules[@]}"

# Equivalent mutants: no input tells them apart from the code (module:line, then why).
#
# sanitize.py:36 `code < 0x100` -> `<= 0x100`, `< 257`; :38 `code < 0x10000` -> `<= 0x10000`,
#   `< 65537`: U+0100 and U+10000 are no characters _UNSAFE matches, so _escape never sees them.
# equivalent: dockerscope.sanitize.x__escape__mutmut_ 5 6 9 10
#
# service/layers.py:98 split(" ", 1)[0] -> split(" ")[0], split(" ", 2)[0]: the first word is the
#   same however often the rest is split.
# equivalent: dockerscope.service.layers.x__evidence__mutmut_ 11 14
# service/layers.py:153 and :171 zip(..., strict=True) -> strict False/None/absent: the lists are
#   all made from the same entries, one item each, so their lengths are always equal.
# equivalent: dockerscope.service.layers.x_map_history__mutmut_ 24 27 28 91 95 96
# Not equivalent, left for the module's owner: service/layers.py:98 split(" ", 1) -> split(None, 1)
#   (x__evidence__mutmut_8): a zero-size `ENV\tA=1` (tab, not space, after the word; no builder
#   writes that) is judged by the word `ENV\tA=1`, so it counts as a possible layer, not metadata.
#
# service/file_analysis.py:152 put(entry, layer) -> put(entry, None): the layer stored with a
#   directory is read only to charge wasted bytes, and a directory stores none (waste() returns
#   before using it).
# equivalent: dockerscope.service.file_analysis.xǁ_Filesystemǁensure_parents__mutmut_ 34
# service/file_analysis.py:169 zip(..., strict=True) -> strict False/None/absent: wasted_by_layer
#   gets one item per layer before the layer is replayed, so both sides have the same length.
# equivalent: dockerscope.service.file_analysis.x_analyze_layers__mutmut_ 30 33 34
# service/file_analysis.py:218 `parent and parent not in paths` -> `or`: ensure_parents() is then
#   also called when the parent exists or is the root, and finds nothing missing.
# service/file_analysis.py:251 wasted=0 -> None, 1: analyze_layers() replaces every layer's
#   `wasted` with its total.
# equivalent: dockerscope.service.file_analysis.x__apply_layer__mutmut_ 64 123 138
# service/file_analysis.py:322-324 (_drop: the sibling index, 7 mutants) and :331
#   (pop(current, None) -> pop(current)): in filesystem_at() every name in `children` is a present
#   path, and a name left behind by a skipped discard is either absent when its parent's subtree
#   is dropped (pop with a default: no effect) or present again because the path came back.
# equivalent: dockerscope.service.file_analysis.x__drop__mutmut_ 8 9 11 12 13 14 15
# equivalent: dockerscope.service.file_analysis.x__drop_children__mutmut_ 10
#
# service/ci_rules.py: the RULES table and Thresholds' defaults are module- and class-level data,
#   which mutmut does not mutate (it mutates function bodies only). With the table moved into a
#   function once to check it, the tests killed all its mutants but two equivalent ones
#   (fails_below=False -> None: the field is read for its truth only); the defaults are asserted
#   value by value in tests/test_ci_rules.py.
#
# service/export_reader.py:147, :424, :640 decode("utf-8") -> decode("UTF-8"): the same codec.
# equivalent: dockerscope.service.export_reader.x__text__mutmut_ 6
# equivalent: dockerscope.service.export_reader.xǁ_LayerParserǁ_member__mutmut_ 14
# equivalent: dockerscope.service.export_reader.xǁ_ExportParserǁ_member__mutmut_ 8
# service/export_reader.py:157 split(b"\0", 1)[0] -> split(b"\0")[0], split(b"\0", 2)[0]: the
#   text before the first NUL is the same however often the rest is split.
# equivalent: dockerscope.service.export_reader.x__cstring__mutmut_ 4 7
# service/export_reader.py:170 from_bytes(field[1:], "big") -> no byte order: "big" is the
#   default from Python 3.11 on (on 3.10 the mutant raises TypeError; the tests run on 3.11);
#   :171 value - 256 ** (len - 1) -> `+`, 257 **, ** (len + 1): a field that starts with 0xff is
#   out of range either way (negative, or at least 256**7 > 2**63 for the ids, 256**11 for the
#   size), with the same message.
# equivalent: dockerscope.service.export_reader.x__number__mutmut_ 8 14 16 17
# service/export_reader.py:227-236 _left, _sink_left, ended = None; _sink = "": every reader
#   tests them for truth only, and _sink is read only after _start_data has set it.
# equivalent: dockerscope.service.export_reader.xǁ_TarParserǁ__init____mutmut_ 2 4 5 12
# service/export_reader.py:245 min(..., end + pos): the slice stops at the data's end anyway;
#   :246 `>` -> `>=` and :249 `_left = None`: with left == end - pos both leave _left 0 (falsy)
#   and stop at the end; :253 `<` -> `<=`: exactly 512 bytes left go through the partial buffer
#   and give the same block; :254 end + pos: the slice clamps, pos past `end` ends the loop.
# equivalent: dockerscope.service.export_reader.xǁ_TarParserǁfeed__mutmut_ 12 13 18 24 31
# service/export_reader.py:271 _sink = "" after the sink closes: _to_sink runs only while
#   _sink_left is set, and _start_data sets _sink with it.
# equivalent: dockerscope.service.export_reader.xǁ_TarParserǁ_to_sink__mutmut_ 7
# service/export_reader.py:290 `not block[0]` -> `not block[1]`: the comparison with the zero
#   block decides alone; :331 find(0, None, 100) starts at 0 too; find(0, 0, 101): differs only
#   when the name fills 100 bytes and byte 100 is NUL, and then both end the name at 100;
#   :337 link = None / b"XXXX": neither _member reads the link of a member that is no link.
# equivalent: dockerscope.service.export_reader.xǁ_TarParserǁ_header__mutmut_ 7 158 166 191 192
# service/export_reader.py:392 `space < 0` -> `<= 0`, `< 1`: a space at the record's start
#   leaves no length digits and is refused with the same message; :398 `length <= space - pos`
#   -> `<`: a length that covers only its own digits makes the next record start at the space,
#   which is refused the same way.
# equivalent: dockerscope.service.export_reader.x__parse_pax__mutmut_ 16 17 27
# service/export_reader.py:478 and :508 decompressobj(17 + MAX_WBITS) also accepts a zlib
#   header, but only streams with gzip magic get there; :509 decompress without a bound gives
#   the same bytes in one piece.
# equivalent: dockerscope.service.export_reader.xǁ_LayerReaderǁ__init____mutmut_ 11
# equivalent: dockerscope.service.export_reader.xǁ_LayerReaderǁ_inflate__mutmut_ 21 26
# service/export_reader.py:525 `... if eof else b""` -> `if eof or True`: a zstd decompressobj's
#   unused_data stays empty until its frame ends.
# equivalent: dockerscope.service.export_reader.xǁ_LayerReaderǁ_unzstd__mutmut_ 18
# service/export_reader.py:593 need = _BLOCK + len(head): the head may grow past 512 bytes,
#   but it is classified on its first 512 and all of it is passed on either way.
# equivalent: dockerscope.service.export_reader.xǁ_Memberǁfeed__mutmut_ 3
# service/export_reader.py:421 _count -= 1: -k % 4096 is 0 at the same entries as k % 4096.
# equivalent: dockerscope.service.export_reader.xǁ_LayerParserǁ_member__mutmut_ 2
# service/export_reader.py:669 and :771 zip(..., strict=True) -> strict False/None/absent:
#   image_layers and _check_expected refuse unequal lengths just before.
# equivalent: dockerscope.service.export_reader.xǁ_ExportParserǁimage_layers__mutmut_ 52 55 56
# equivalent: dockerscope.service.export_reader.x__check_expected__mutmut_ 9 12 13
# service/export_reader.py:801 the message for an error that is no ExportFormatError: no stream
#   gets there (every step raises ExportFormatError itself, or its error is caught and worded
#   where it happens; the fuzz tests in test_export_fuzz.py never reach it): a net for a bug.
# equivalent: dockerscope.service.export_reader.x__unreadable__mutmut_ 1 2 3 4
