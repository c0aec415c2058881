#!/usr/bin/env python3
"""Offline replacement for Bazel's Java CoverageOutputGenerator (@remote_coverage_tools).

Two modes, selected by the flags Bazel passes:
  lcov_merger (per test):  --coverage_dir=D --output_file=O [--filter_sources=RE]...
                           [--source_file_manifest=M] [--sources_to_replace_file=F]
      reads gcc's `gcov -i` JSON (*.gcov.json.gz, gcc >= 9) and lcov files (*.dat)
      found under D and writes one lcov tracefile O.
  coverage_report_generator (--combined_report=lcov):  --reports_file=R --output_file=O
      R lists lcov files, one per line; they are merged into O.
"""
import gzip
import json
import os
import re
import sys


def parse_args(argv):
    opts = {"filter_sources": []}
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            continue
        key, value = arg[2:].split("=", 1)
        if key == "filter_sources":
            opts["filter_sources"].append(value)
        else:
            opts[key] = value
    return opts


class Report:
    def __init__(self):
        self.files = {}  # source -> {"lines": {line: count}, "fns": {name: [line, count]}}

    def entry(self, source):
        return self.files.setdefault(source, {"lines": {}, "fns": {}})

    def add_line(self, source, line, count):
        lines = self.entry(source)["lines"]
        lines[line] = lines.get(line, 0) + count

    def add_fn(self, source, name, line, count):
        fns = self.entry(source)["fns"]
        old = fns.get(name, [line, 0])
        fns[name] = [old[0], old[1] + count]

    def add_gcov_json(self, path):
        with gzip.open(path, "rt") as f:
            data = json.load(f)
        for fobj in data.get("files", []):
            src = fobj["file"]
            for fn in fobj.get("functions", []):
                self.add_fn(src, fn.get("name", fn.get("demangled_name")),
                            fn.get("start_line", 0), fn.get("execution_count", 0))
            for ln in fobj.get("lines", []):
                self.add_line(src, ln["line_number"], ln.get("count", 0))

    def add_lcov(self, path):
        src = None
        fn_lines = {}
        with open(path, errors="replace") as f:
            for raw in f:
                line = raw.strip()
                if line.startswith("SF:"):
                    src = line[3:]
                    self.entry(src)
                    fn_lines = {}
                elif src is None:
                    continue
                elif line.startswith("DA:"):
                    parts = line[3:].split(",")
                    self.add_line(src, int(parts[0]), int(float(parts[1])))
                elif line.startswith("FN:"):
                    num, name = line[3:].split(",", 1)
                    fn_lines[name] = int(num)
                    self.entry(src)["fns"].setdefault(name, [int(num), 0])
                elif line.startswith("FNDA:"):
                    count, name = line[5:].split(",", 1)
                    self.add_fn(src, name, fn_lines.get(name, 0), int(float(count)))
                elif line == "end_of_record":
                    src = None

    def write(self, out_path, keep):
        with open(out_path, "w") as out:
            for src in sorted(self.files):
                if not keep(src):
                    continue
                rec = self.files[src]
                out.write("SF:%s\n" % src)
                for name, (num, _) in sorted(rec["fns"].items(), key=lambda kv: kv[1][0]):
                    out.write("FN:%d,%s\n" % (num, name))
                for name, (_, count) in sorted(rec["fns"].items(), key=lambda kv: kv[1][0]):
                    out.write("FNDA:%d,%s\n" % (count, name))
                out.write("FNF:%d\n" % len(rec["fns"]))
                out.write("FNH:%d\n" % sum(1 for _, c in rec["fns"].values() if c > 0))
                for num in sorted(rec["lines"]):
                    out.write("DA:%d,%d\n" % (num, rec["lines"][num]))
                out.write("LH:%d\n" % sum(1 for c in rec["lines"].values() if c > 0))
                out.write("LF:%d\n" % len(rec["lines"]))
                out.write("end_of_record\n")


def main(argv):
    opts = parse_args(argv)
    out_path = opts.get("output_file")
    if not out_path:
        sys.stderr.write("lcov_merger: --output_file is required\n")
        return 2
    report = Report()
    if "reports_file" in opts:  # coverage_report_generator mode
        with open(opts["reports_file"]) as f:
            for name in f.read().split():
                if os.path.exists(name) and os.path.getsize(name) > 0:
                    report.add_lcov(name)
        report.write(out_path, lambda src: True)
        return 0

    cov_dir = opts.get("coverage_dir", ".")
    for root, _, names in os.walk(cov_dir):
        for name in names:
            path = os.path.join(root, name)
            if name.endswith(".gcov.json.gz"):
                report.add_gcov_json(path)
            elif name.endswith(".dat") and os.path.abspath(path) != os.path.abspath(out_path):
                report.add_lcov(path)

    filters = [re.compile(r) for r in opts["filter_sources"]]
    manifest = None
    if opts.get("source_file_manifest") and os.path.exists(opts["source_file_manifest"]):
        with open(opts["source_file_manifest"]) as f:
            manifest = {l.strip() for l in f if l.strip() and not l.strip().endswith((".gcno", ".txt"))}

    def keep(src):
        # Bazel always passes --filter_sources=.*external/.+ ; honouring it would drop
        # every file of a local_repository dependency even when --instrumentation_filter
        # selected it.  Files in the manifest were instrumented on purpose: keep them.
        if manifest is not None:
            return src in manifest and not any(r.match(src) for r in filters if "external" not in r.pattern)
        return not any(r.match(src) for r in filters)

    report.write(out_path, keep)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
