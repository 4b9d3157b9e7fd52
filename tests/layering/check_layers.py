#!/usr/bin/env python3
"""The one-way stairs of docs/internals/architecture.md, checked:

    core -> net -> http -> audio -> space -> rtc -> api -> cmd

Each folder of src/ may use only its own layer and the layers before it. Three checks:

  1. includes: every #include "spacecast/X.h" in src/ and include/ names a header of the
     same or a lower layer (a header's layer is its module's: X.h goes with src/*/X.c; a
     type header X-t.h goes with X; the few headers without a .c are listed below);
  2. calls: every sc_ symbol an object file of the library uses is defined in an object of
     the same or a lower layer (nm over the build: a call a local prototype smuggles in is
     caught too);
  3. no circle: no group of modules that call each other round, inside a layer either;
  4. unit tests mirror source paths: tests/unit/<folder>/test_<module>.c tests src/<folder>/<module>.c.

Usage: check_layers.py SOURCE_DIR [BUILD_DIR]   (without BUILD_DIR only check 1 runs)
       check_layers.py --self-test                (it fails on an upward include and a circle)
Exit 0 when clean, 1 with every violation listed. Stdlib only."""
import os
import re
import subprocess
import sys

LAYERS = ["core", "net", "http", "audio", "space", "rtc", "api", "cmd"]
RANK = {name: i for i, name in enumerate(LAYERS)}
# folders that are not a layer of their own
FOLDER_LAYER = {"store": "core"}
# headers with no .c of the same name
HEADER_LAYER = {
    "common": "core",
    "api": "api",
    "cmd": "cmd",
    "worker": "net",  # worker-t.h: net/server.c makes workers, net/conn.c sweeps them
}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"spacecast/([A-Za-z0-9_\-]+)\.h"', re.M)


def folder_layer(folder):
    folder = FOLDER_LAYER.get(folder, folder)
    return folder if folder in RANK else None


def source_files(src):
    """(path, module, layer) of every .c under src/."""
    out = []
    for root, _, files in os.walk(src):
        rel = os.path.relpath(root, src)
        folder = rel.split(os.sep)[0] if rel != "." else "cmd"  # src/main.c is the command's
        for f in sorted(files):
            if f.endswith(".c"):
                out.append((os.path.join(root, f), f[:-2], folder_layer(folder)))
    return out


def header_layers(src_dir, inc_dir):
    modules = {m: layer for _, m, layer in source_files(src_dir)}
    layers = {}
    for f in sorted(os.listdir(inc_dir)):
        if not f.endswith(".h"):
            continue
        name = f[:-2]
        base = name[:-2] if name.endswith("-t") else name
        layers[name] = HEADER_LAYER.get(base) or modules.get(base)
    return layers


def check_includes(source_dir):
    src = os.path.join(source_dir, "src")
    inc = os.path.join(source_dir, "include", "spacecast")
    hl = header_layers(src, inc)
    errors = []
    units = [(p, layer) for p, _, layer in source_files(src)]
    units += [(os.path.join(inc, h + ".h"), layer) for h, layer in hl.items()]
    for path, layer in units:
        rel = os.path.relpath(path, source_dir)
        if layer is None:
            errors.append("%s: in no layer (add its folder or header to check_layers.py)" % rel)
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for m in INCLUDE_RE.finditer(text):
            target = m.group(1)
            tl = hl.get(target)
            if tl is None:
                errors.append("%s: includes spacecast/%s.h, which is in no layer" % (rel, target))
            elif RANK[tl] > RANK[layer]:
                line = text.count("\n", 0, m.start()) + 1
                errors.append("%s:%d: %s includes spacecast/%s.h of %s (up a layer)" % (rel, line, layer, target, tl))
    return errors


def check_test_paths(source_dir):
    """tests/unit/<folder>/test_<module>.c beside src/<folder>/<module>.c (a test of no single
    module may sit anywhere under tests/unit/)."""
    src = os.path.join(source_dir, "src")
    where = {m: os.path.relpath(os.path.dirname(p), src) for p, m, _ in source_files(src)}
    errors = []
    unit = os.path.join(source_dir, "tests", "unit")
    for root, _, files in os.walk(unit):
        for f in sorted(files):
            if not (f.startswith("test_") and f.endswith(".c")):
                continue
            module = f[5:-2]
            folder = os.path.relpath(root, unit)
            if module in where and where[module] != folder:
                errors.append("%s: the test of src/%s/%s.c belongs in tests/unit/%s/" % (
                    os.path.relpath(os.path.join(root, f), source_dir), where[module], module, where[module]))
    return errors


def nm_symbols(obj):
    """(defined, undefined) sc_ symbols of one object file."""
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCV" and parts[1].isupper():
            defined.add(parts[2])
    pick = lambda s: {x for x in s if x.startswith("sc_") or x.startswith("SC_")}
    return pick(defined), pick(undefined)


def library_objects(source_dir, build_dir):
    """(module, layer, object path) of every library object the build made."""
    src = os.path.join(source_dir, "src")
    objdir = os.path.join(build_dir, "CMakeFiles", "sccore.dir")
    out = []
    for path, module, layer in source_files(src):
        obj = os.path.join(objdir, os.path.relpath(path, source_dir) + ".o")
        if os.path.exists(obj):
            out.append((os.path.relpath(path, source_dir), module, layer, obj))
        elif not path.endswith("main.c"):
            raise SystemExit("no object for %s in %s: build first" % (path, objdir))
    return out


def check_calls(source_dir, build_dir):
    objs = library_objects(source_dir, build_dir)
    owner = {}
    syms = {}
    for rel, module, layer, obj in objs:
        d, u = nm_symbols(obj)
        syms[rel] = u
        for s in d:
            owner[s] = (rel, layer)
    errors = []
    edges = {rel: set() for rel, _, _, _ in objs}
    for rel, module, layer, obj in objs:
        for s in sorted(syms[rel]):
            if s not in owner:
                continue
            drel, dlayer = owner[s]
            if drel == rel:
                continue
            edges[rel].add(drel)
            if RANK[dlayer] > RANK[layer]:
                errors.append("%s: %s calls %s of %s (%s, up a layer)" % (rel, layer, s, dlayer, drel))
    errors += check_cycles(edges)
    return errors


def check_cycles(edges):
    """Tarjan's strongly connected components over the file-level call graph."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return ["a circle of calls: %s" % " <-> ".join(c) for c in comps]


def self_test():
    """The check must fail on what it exists to catch: a tree with one upward include."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for path, text in {
            "src/net/conn.c": '#include "spacecast/conn.h"\n#include "spacecast/http.h"\n',
            "src/http/http.c": '#include "spacecast/http.h"\n#include "spacecast/conn.h"\n',
            "include/spacecast/conn.h": "",
            "include/spacecast/http.h": '#include "spacecast/conn.h"\n',
        }.items():
            os.makedirs(os.path.join(d, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(d, path), "w") as f:
                f.write(text)
        errors = check_includes(d)
    ok = len(errors) == 1 and "src/net/conn.c:2: net includes spacecast/http.h of http" in errors[0]
    cyc = check_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    ok = ok and cyc == ["a circle of calls: a <-> b <-> c"]
    print("self-test %s: %s %s" % ("passed" if ok else "FAILED", errors, cyc))
    return 0 if ok else 1


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--self-test":
        return self_test()
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    source_dir = sys.argv[1]
    errors = check_includes(source_dir) + check_test_paths(source_dir)
    checked = "includes, test paths"
    if len(sys.argv) > 2:
        errors += check_calls(source_dir, sys.argv[2])
        checked = "includes, test paths, calls and circles"
    for e in errors:
        print("LAYERING " + e)
    print("%d violation(s) of %s (%s)" % (len(errors), " -> ".join(LAYERS), checked))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
