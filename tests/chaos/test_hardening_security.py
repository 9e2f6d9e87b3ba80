"""A hostile server cannot get the key stored or printed, and nothing but the command line
lowers the plain-http guard (issue 13, items 5 and 6)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.chaos.helpers import FIGURES, write_records, zsync
from tests.emulator.testing import running_emulator

SECRET = "zk_echo_" + secrets.token_hex(16)


def _env(url: str, ledger: Path) -> dict[str, str]:
    return {
        "ZENTRIK_API_BASE": url,
        "ZENTRIK_API_KEY": SECRET,
        "ZSYNC_LEDGER": str(ledger),
        "ZSYNC_RETRY_SCALE": "0.02",
    }


def _found(where: str, text: str | bytes) -> int:
    FIGURES["key_places"] += 1
    needle: str | bytes = SECRET if isinstance(text, str) else SECRET.encode()
    hit = int(needle in text)
    FIGURES["key_found"] += hit
    return hit


@pytest.mark.parametrize("field", ["jobId", "publicId", "workspaceId"])
def test_a_server_echoing_the_key_in_a_receipt(tmp_path: Path, field: str) -> None:
    ledger = tmp_path / "z.db"
    write_records(tmp_path / "in.jsonl", 20, prefix="echo")
    with running_emulator(
        api_key=SECRET,
        echo_key_in=field,
        workspace_name=f"team {SECRET}",
        process_seconds=0.1,
    ) as emu:
        env = _env(emu.url, ledger)
        push = zsync(["-vv", "push", "-i", str(tmp_path / "in.jsonl"), "--poll-seconds", "30"], env)
        assert "Traceback" not in push.stderr
        places = {
            "push output": push.stdout + push.stderr,
            "ledger, -wal and -shm": b"".join(
                p.read_bytes() for p in tmp_path.glob("z.db*") if p.is_file()
            ),
        }
        for command in (["export"], ["show", "echo-00001"], ["status"], ["check"], ["errors"]):
            done = zsync(command, env)
            assert "Traceback" not in done.stderr, done.stderr
            places[" ".join(command)] = done.stdout + done.stderr
        # After the runs, with the WAL checkpointed into the file.
        places["ledger after"] = b"".join(
            p.read_bytes() for p in tmp_path.glob("z.db*") if p.is_file()
        )
    leaked = [where for where, text in places.items() if _found(where, text)]
    assert leaked == [], f"the key appears in {leaked}"


def test_only_the_flag_lifts_the_plain_http_guard(tmp_path: Path) -> None:
    write_records(tmp_path / "in.jsonl", 1)
    base = "http://zentrik.invalid/api"
    (tmp_path / "z.env").write_text(
        f"ZENTRIK_API_BASE={base}\nZENTRIK_API_KEY={SECRET}\nZSYNC_ALLOW_INSECURE_HTTP=1\n"
    )
    args = ["push", "-i", str(tmp_path / "in.jsonl"), "--ledger", str(tmp_path / "z.db")]
    from_file = zsync([*args, "--env-file", str(tmp_path / "z.env")], {})
    assert from_file.returncode == 3, from_file.stderr
    assert "plain http to zentrik.invalid" in from_file.stderr
    from_env = zsync(
        args,
        {"ZENTRIK_API_BASE": base, "ZENTRIK_API_KEY": SECRET, "ZSYNC_ALLOW_INSECURE_HTTP": "1"},
    )
    assert from_env.returncode == 3, from_env.stderr
    assert not (tmp_path / "z.db").exists()  # refused before anything was opened


def test_an_env_file_sets_only_the_api_base_and_key(tmp_path: Path) -> None:
    write_records(tmp_path / "in.jsonl", 2)
    with running_emulator(api_key=SECRET) as emu:
        (tmp_path / "z.env").write_text(
            f"ZENTRIK_API_BASE={emu.url}\nZENTRIK_API_KEY={SECRET}\n"
            f"ZSYNC_LEDGER={tmp_path / 'elsewhere.db'}\n"
        )
        done = zsync(
            [
                "push",
                "-i",
                str(tmp_path / "in.jsonl"),
                "--no-poll",
                "--env-file",
                str(tmp_path / "z.env"),
            ],
            {"ZSYNC_RETRY_SCALE": "0.02"},
        )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "zsync.db").exists() and not (tmp_path / "elsewhere.db").exists()
