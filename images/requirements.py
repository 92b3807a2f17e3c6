"""Set operations on `uv export` requirement files, for the image builds (stdlib only: it runs
on the bare base images, before anything is installed).

    requirements.py split OUTDIR FILE...  OUTDIR/shared.txt: the entries every FILE holds (same
                                          name, version, markers and hashes); OUTDIR/<name>.txt
                                          for each FILE: its entries minus the shared ones
    requirements.py minus FILE OTHER      FILE's entries that OTHER does not hold (stdout)
    requirements.py missing FILE          FILE's entries this interpreter does not already have
                                          at that exact version (stdout); a summary on stderr
    requirements.py prune-tests FILE      removes the test suites FILE's installed packages ship
                                          (see prune_tests); MB freed on stderr
    requirements.py strip FILE TOOLS      strips the symbol tables and debug sections of the
                                          shared libraries FILE's installed packages ship, with
                                          binutils' strip from the root filesystem TOOLS (see
                                          strip); MB freed on stderr

Each entry is written on one line with its hashes, so `pip install --no-deps --require-hashes
-r` installs exactly the locked files. Why: the three service images (images/mlflow, api-data,
inference) install what they share once, in a base layer they all build on (the same first
stages in their three Dockerfiles), then each service's rest on top;
images/airflow/Dockerfile installs only what the Airflow base image lacks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def say(message: str) -> None:
    """To stderr: the build log shows it, and stdout stays the requirements."""
    sys.stderr.write(f"{message}\n")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(path: Path) -> list[str]:
    """Each entry on one line (continuations joined, comments dropped). A name may have several
    entries, one per environment marker (numpy==A ; python_version < '3.12', numpy==B ; ...):
    pip installs the one whose marker holds."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if PIN.match(line) is None:
            raise SystemExit(f"{path}: not a pinned requirement: {line[:80]}")
        found.append(line)
    return found


def write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in sorted(lines)))


def split(outdir: Path, files: list[Path]) -> None:
    sets = [set(entries(f)) for f in files]
    shared = set.intersection(*sets)
    write(outdir / "shared.txt", list(shared))
    for path, found in zip(files, sets, strict=True):
        write(outdir / path.name, list(found - shared))
        say(f"{path.stem}: {len(found)} entries, {len(found - shared)} its own")
    say(f"shared by all: {len(shared)}")


def minus(path: Path, other: Path) -> None:
    held = set(entries(other))
    sys.stdout.write("".join(f"{e}\n" for e in sorted(entries(path)) if e not in held))


def missing(path: Path) -> None:
    wanted = entries(path)
    out, replaced = [], []
    for entry in sorted(wanted):
        match = PIN.match(entry)
        assert match is not None
        name, version = canonical(match[1]), match[3]
        try:
            installed: str | None = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            # An entry whose marker does not hold here is kept too: pip skips it.
            out.append(entry)
            if installed is not None:
                replaced.append(f"{name} {installed}->{version}")
    sys.stdout.write("".join(f"{e}\n" for e in out))
    say(
        f"{path.name}: {len(wanted)} entries, {len(wanted) - len(out)} already installed at the "
        f"locked version, {len(out)} to install ({len(replaced)} differ from the installed "
        f"version{': ' + ', '.join(replaced) if replaced else ''})"
    )


def is_test_suite(directory: Path) -> bool:
    return directory.name == "tests" and any(
        f.name == "conftest.py" or (f.name.startswith("test_") and f.suffix == ".py")
        for f in directory.iterdir()
    )


def prune_tests(path: Path) -> None:
    """Remove the test suites of the packages FILE names, as installed for this interpreter: a
    `tests` folder holding test_*.py or conftest.py, with its bytecode. Run in the same layer as
    the install, they never reach the image: about a quarter of the services' dependencies
    (pandas' alone is some 50 MB with bytecode), and no service imports them."""
    names = {canonical(m[1]) for e in entries(path) if (m := PIN.match(e))}
    suites: set[Path] = set()
    for name in sorted(names):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # its marker does not hold here
        for file in dist.files or ():
            parts = file.parts
            if "tests" in parts[:-1]:
                top = Path(str(dist.locate_file(Path(*parts[: parts.index("tests") + 1]))))
                if top.is_dir() and is_test_suite(top):
                    suites.add(top)
    freed = 0
    for suite in sorted(suites):
        freed += sum(f.stat().st_size for f in suite.rglob("*") if f.is_file())
        shutil.rmtree(suite)
    say(f"{path.name}: {len(suites)} test suites removed, {freed / 1e6:.0f} MB")


def strippable_files(path: Path) -> list[Path]:
    """The files the packages FILE names installed for this interpreter (their RECORD), except
    those of wheels repaired by auditwheel (a `<name>.libs` folder of vendored libraries):
    auditwheel rewrote their libraries with patchelf, and binutils' strip then writes a library
    the loader refuses (seen: SciPy's OpenBLAS, "ELF load command address/offset not
    page-aligned")."""
    found = []
    for name in sorted({canonical(m[1]) for e in entries(path) if (m := PIN.match(e))}):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # its marker does not hold here
        files = list(dist.files or ())
        if any(f.parts[0].endswith(".libs") for f in files):
            continue
        found += [Path(str(dist.locate_file(f))) for f in files]
    return found


def strip(path: Path, tools: Path) -> None:
    """Strip the shared libraries of the packages FILE names (`strip --strip-unneeded`, what
    Debian does to every library it ships): their symbol tables and debug sections, which no
    import reads; the dynamic symbols stay. Many wheels ship them unstripped (uvloop's one
    library carries 12 MB; pyarrow's 33). Not the wheels auditwheel repaired (strippable_files).
    strip comes from TOOLS, the root filesystem of a
    build stage with Debian's binutils, mounted for the build only; it runs with that root's own
    dynamic loader and libraries, so it needs nothing from the image it strips."""
    (loader,) = sorted(tools.glob("usr/lib64/ld-linux-*.so.*")) or sorted(
        tools.glob("usr/lib/*/ld-linux-*.so.*")
    )
    libraries = ":".join(str(d) for d in sorted(tools.glob("usr/lib/*-linux-gnu")))
    command = [str(loader), "--library-path", libraries, str(tools / "usr/bin/strip")]
    libs = []
    for file in strippable_files(path):
        if ".so" in file.name and file.is_file() and not file.is_symlink():
            with file.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    libs.append(file)
    before = sum(f.stat().st_size for f in libs)
    if libs:
        subprocess.run([*command, "--strip-unneeded", *map(str, libs)], check=True)
    freed = before - sum(f.stat().st_size for f in libs)
    say(f"{path.name}: {len(libs)} shared libraries stripped, {freed / 1e6:.0f} MB")


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "split":
        split(Path(argv[1]), [Path(a) for a in argv[2:]])
    elif len(argv) == 3 and argv[0] == "minus":
        minus(Path(argv[1]), Path(argv[2]))
    elif len(argv) == 2 and argv[0] == "missing":
        missing(Path(argv[1]))
    elif len(argv) == 2 and argv[0] == "prune-tests":
        prune_tests(Path(argv[1]))
    elif len(argv) == 3 and argv[0] == "strip":
        strip(Path(argv[1]), Path(argv[2]))
    else:
        say(__doc__ or "")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
