"""The text keyring: sealing, opening, rotation by key id, and ``nlets-switch keys``."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlets_switch.cli import main
from nlets_switch.store import keys, textcrypt


@pytest.fixture(autouse=True)
def _no_cipher_after() -> Iterator[None]:
    before = textcrypt.current()
    yield
    textcrypt.configure(before)


def test_sealed_text_opens_only_on_its_row_and_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "text.keys"
    ring, made = keys.load_keyring(path)
    assert made and ring.current == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    textcrypt.configure(ring)
    old = textcrypt.seal_text("DQ.AZNLETS20.NY.TXT\nNAM/SMITH,JOHN", 7)
    assert textcrypt.is_sealed(old) and "SMITH" not in old
    assert textcrypt.open_text(old, 7) == "DQ.AZNLETS20.NY.TXT\nNAM/SMITH,JOHN"
    with pytest.raises(ValueError, match="moved from another row"):
        textcrypt.open_text(old, 8)
    assert textcrypt.open_text("clear, from before", 9) == "clear, from before"

    ring2 = keys.rotate_keyring(path)
    assert ring2.current == 2 and set(ring2.keys) == {1, 2}
    textcrypt.configure(ring2)
    new = textcrypt.seal_text("NAM/DOE,JANE", 10)
    assert textcrypt.open_text(new, 10) == "NAM/DOE,JANE"
    assert textcrypt.open_text(old, 7).endswith("SMITH,JOHN")  # old rows were not rewritten
    # Without the key a sealed row says which key it needs.
    textcrypt.configure(keys.Keyring({2: ring2.keys[2]}, 2, path))
    with pytest.raises(ValueError, match="text key 1"):
        textcrypt.open_text(old, 7)


def test_keys_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    ring = tmp_path / "k" / "text.keys"
    cfg.write_text(f"security:\n  text_key_file: {ring}\n")
    args = ["--config", str(cfg), "--data-dir", str(tmp_path / "data")]
    assert main(["keys", "rotate", *args]) == 2
    assert "keys init" in capsys.readouterr().err
    assert main(["keys", "init", *args]) == 0
    assert f"made {ring}" in capsys.readouterr().out
    assert main(["keys", "rotate", *args]) == 0
    assert "key 2 seals new rows" in capsys.readouterr().out
    assert main(["keys", "show", *args]) == 0
    out = capsys.readouterr().out
    assert "key ids   1, 2" in out and "sealing   2" in out
    assert ring.read_text().count("\n") == 3  # comment + two keys


def test_processes_making_the_keyring_together_all_read_the_one_made(tmp_path: Path) -> None:
    # O_EXCL alone let a loser of the race read the winner's file before it was
    # written ("holds no key"); the file now appears whole.
    import threading

    from nlets_switch.store.keys import load_keyring as load

    path = tmp_path / "keys" / "text.keys"
    gate = threading.Barrier(8)
    got: list[bytes] = []
    errors: list[BaseException] = []

    def make() -> None:
        gate.wait()
        try:
            got.append(load(path)[0].key)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and len(got) == 8 and len(set(got)) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["text.keys"]  # no temporaries
