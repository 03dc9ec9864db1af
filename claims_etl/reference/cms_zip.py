"""The RVU zip CMS publishes per release (e.g. RVU26B.zip): which members are the PPRRVU CSVs (one, or
from 2026 a non-QP and a QP one) and the GPCI CSV, extracted by base name only (no zip-slip), each at
most `MAX_MEMBER_BYTES` (docs/spec.md §3)."""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from claims_etl.errors import ReferenceFileError

MAX_MEMBER_BYTES = 200 * 1024 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CmsZipFiles:
    """The CSVs `rvu_files_in_zip` extracted: the PPRRVU file whose CONV FACTOR is the non-QP factor,
    the QP one when the zip has it (from 2026), and the GPCI file when the zip has one."""

    non_qp: Path
    qp: Path | None
    gpci: Path | None


def _base_name(member: str) -> str:
    return PurePosixPath(member.replace("\\", "/")).name


def _csv_named(info: zipfile.ZipInfo, prefix: str) -> bool:
    name = _base_name(info.filename).lower()
    return not info.is_dir() and name.startswith(prefix) and name.endswith(".csv")


def _qp_kind(info: zipfile.ZipInfo) -> str | None:
    """ "non_qp" or "qp" when a PPRRVU CSV's name says which conversion factor it carries."""
    name = _base_name(info.filename).lower().removeprefix("pprrvu").removesuffix(".csv")
    if re.search(r"non[ _-]?qp", name):
        return "non_qp"
    return "qp" if "qp" in name else None


def _listed(members: list[zipfile.ZipInfo]) -> str:
    return ", ".join(repr(info.filename) for info in members)


def _choose_rvus(
    zip_path: Path, rvus: list[zipfile.ZipInfo], choose: str | None
) -> tuple[zipfile.ZipInfo, zipfile.ZipInfo | None]:
    if not rvus:
        raise ReferenceFileError(f"{zip_path.name} holds no PPRRVU CSV")
    if choose is not None:
        chosen = [info for info in rvus if _base_name(info.filename).lower() == choose.lower()]
        if len(chosen) != 1:
            problem = "is not one of" if not chosen else "names several of"
            raise ReferenceFileError(f"{zip_path.name}: {choose!r} {problem} its PPRRVU CSVs: {_listed(rvus)}")
        others = [info for info in rvus if info is not chosen[0] and _qp_kind(info) == "qp"]
        return chosen[0], others[0] if len(others) == 1 else None
    if len(rvus) == 1:
        return rvus[0], None
    kinds = [_qp_kind(info) for info in rvus]
    if len(rvus) == 2 and sorted(kinds, key=str) == ["non_qp", "qp"]:
        non_qp = rvus[kinds.index("non_qp")]
        return non_qp, rvus[kinds.index("qp")]
    raise ReferenceFileError(
        f"{zip_path.name} holds {len(rvus)} PPRRVU CSVs and none is recognisably the non-QP one: "
        f"{_listed(rvus)}; choose one by name"
    )


def _extract(zip_path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, into: Path) -> Path:
    """One member, written under its base name only (never outside `into`), at most MAX_MEMBER_BYTES."""
    too_big = ReferenceFileError(
        f"{zip_path.name}: {info.filename!r} is over {MAX_MEMBER_BYTES // (1024 * 1024)} MB uncompressed; "
        "refused, nothing loaded"
    )
    if info.file_size > MAX_MEMBER_BYTES:
        raise too_big
    target = into / _base_name(info.filename)
    written = 0
    try:
        with archive.open(info) as source, target.open("wb") as sink:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > MAX_MEMBER_BYTES:  # a header that understates the size
                    raise too_big
                sink.write(chunk)
    except ReferenceFileError:
        target.unlink(missing_ok=True)
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        target.unlink(missing_ok=True)
        raise ReferenceFileError(f"{zip_path.name}: {info.filename!r} is damaged: {error}") from None
    except (RuntimeError, NotImplementedError) as error:  # encrypted, or a compression zipfile lacks
        target.unlink(missing_ok=True)
        raise ReferenceFileError(f"{zip_path.name}: {info.filename!r} cannot be extracted: {error}") from None
    except OSError as error:
        target.unlink(missing_ok=True)
        raise ReferenceFileError(f"{zip_path.name}: cannot write {target.name}: {error.strerror}") from None
    return target


def rvu_files_in_zip(zip_path: Path, into: Path, choose: str | None = None) -> CmsZipFiles:
    """Extract the PPRRVU CSV(s) and the GPCI CSV of a CMS RVU zip (RVU26A.zip, ...) into `into`.

    PPRRVU CSVs are the members whose base name starts with "PPRRVU" and ends with ".csv" (any case);
    GPCI CSVs those starting with "GPCI". One PPRRVU CSV is the non-QP file; two are accepted when one
    name says non-QP ("nonQPP", "non_qp", ...) and the other QP; otherwise `choose`, a member's base name,
    names the non-QP file (and the QP file is the one other whose name says QP, if any). No PPRRVU CSV,
    an ambiguous set without `choose`, several GPCI CSVs, a file that is not a readable zip, or a needed
    member over MAX_MEMBER_BYTES uncompressed is refused with a `ReferenceFileError`. Members are
    written under their base names only, so a name like ``../../x.csv`` cannot escape `into`.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise ReferenceFileError(f"{zip_path.name}: not a zip file, or a damaged one; nothing loaded") from None
    except OSError as error:
        raise ReferenceFileError(f"{zip_path.name}: cannot read: {error.strerror}") from None
    with archive:
        members = archive.infolist()
        non_qp, qp = _choose_rvus(zip_path, [info for info in members if _csv_named(info, "pprrvu")], choose)
        gpcis = [info for info in members if _csv_named(info, "gpci")]
        if len(gpcis) > 1:
            raise ReferenceFileError(f"{zip_path.name} holds {len(gpcis)} GPCI CSVs: {_listed(gpcis)}; nothing loaded")
        try:
            into.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ReferenceFileError(f"cannot create {into}: {error.strerror}") from None
        return CmsZipFiles(
            non_qp=_extract(zip_path, archive, non_qp, into),
            qp=_extract(zip_path, archive, qp, into) if qp is not None else None,
            gpci=_extract(zip_path, archive, gpcis[0], into) if gpcis else None,
        )
