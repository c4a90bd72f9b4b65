"""DHS LEIS: the synthetic person data set behind the ``AX`` responder.

PROTOCOL.md part 5 makes ``AX`` answer two keys from DHS data:

* ``GPQ`` (General Person Query): a search by name (aliases included,
  spelling variants found by phonetic matching, narrowed by DOB), by
  identifier (``SOC/``, ``PPN/``, ``ARN/``) or by address (``ADR/``), answered
  by a ``GPR`` summary (one line per person, each starting ``DIN/``) or
  ``NO RECORD``; a ``GPQ`` with ``DIN/`` returns the full record;
* ``IAQ`` (Immigration Alien Query): answered later by an ``IAR`` saying what
  DHS holds for the person.

:class:`LeisData` is the data set: it searches and writes those answers. It
is synchronous (the asyncio side runs it in a worker thread) and never logs:
names, dates of birth and identifiers are criminal-justice information.

The data set is synthetic. It is made deterministically from a seed
(``random.Random(seed)``: the same seed gives the same rows), stored by
:class:`nlets_switch.store.leis.LeisStore`, built in one transaction on
first use and reused afterwards. Each person is stored sealed (AES-256-GCM,
under the message-text keyring); a search finds its candidates through a
keyed blind index of the search keys (:func:`index_terms`: the phonetic
codes and spelling of every last name and alias, DOB, identifiers, address
words, DIN), decrypts them and applies the rules below to them, so the
answers are those of a clear-text search. A few fixed
test records (:data:`FIXED_DINS`) exist whatever the seed. An agency adds
its own records with :meth:`LeisData.load_file` (JSON Lines, see
``docs/leis.md``).

Phonetic codes come from :mod:`jellyfish` (metaphone and NYSIIS); ranking
among phonetic candidates uses its Jaro-Winkler similarity. Names and dates
of birth follow :mod:`nlets_switch.wire.domain`.

This module is the surface and re-exports the rest: ``leis_model``
(results, normalisation and the name rules), ``leis_data`` (the generator and the fixed
records), ``leis_load`` (load files) and ``leis_format`` (answer texts).
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from nlets_switch.errors import ErCode, MessageError
from nlets_switch.services.leis_data import FIXED_DINS, Generator, fixed_persons, generated_din
from nlets_switch.services.leis_format import format_iar, format_record, format_summary
from nlets_switch.services.leis_load import LeisLoadError, parse_load_file
from nlets_switch.services.leis_model import (
    COMPONENTS,
    DEFAULT_LIMIT,
    Hit,
    SearchResult,
    digits,
    first_matches,
    index_terms,
    location_address,
    middle_compatible,
    name_similarity,
    normalize_address,
    normalize_arn,
    normalize_dob,
    person_row,
    phonetic,
)
from nlets_switch.store import textcrypt
from nlets_switch.store.keys import Keyring
from nlets_switch.store.leis import (
    DB_NAME,
    FIXED,
    GENERATED,
    LOADED,
    Contact,
    Identifier,
    LeisKeyError,
    LeisStore,
    Location,
    Person,
    PersonRow,
    Record,
)
from nlets_switch.store.leiscrypt import LeisCipher
from nlets_switch.wire.domain import NO_RECORD, Name, parse_name

__all__ = [
    "COMPONENTS",
    "DB_NAME",
    "DEFAULT_LIMIT",
    "FIXED_DINS",
    "Contact",
    "Hit",
    "Identifier",
    "LeisData",
    "LeisKeyError",
    "LeisLoadError",
    "Location",
    "Person",
    "SearchResult",
    "fixed_persons",
    "format_iar",
    "format_record",
    "format_summary",
    "index_terms",
    "normalize_address",
    "normalize_arn",
    "normalize_dob",
    "parse_load_file",
]

# Rows go to the store a thousand persons at a time, and progress is told then.
_BATCH = 1000
_NON_LETTERS = re.compile(r"[^A-Z]")


def _batches(seed: int, persons: int, progress: Callable[[int, int], None] | None,
             loaded: frozenset[str]) -> Iterator[list[PersonRow]]:
    """The fixed test records and ``persons`` generated ones, in batches.

    Every DIN is drawn from the generator, loaded or not, so the persons a
    seed makes do not depend on what an agency loaded; a generated person
    whose DIN an agency's record holds is left out.
    """
    fixed = fixed_persons()
    rows = [person_row(p, FIXED) for p in fixed]
    gen = Generator(
        seed,
        taken_ids=((i.kind, i.value) for p in fixed for i in p.identifiers),
        taken_keys=((n, d) for p in fixed for n in (p.name, *p.aliases) for d in p.dobs),
    )
    if progress is not None:
        progress(0, persons)
    for index in range(persons):
        person = gen.person(generated_din(index))
        if person.din not in loaded:
            rows.append(person_row(person, GENERATED))
        if (index + 1) % _BATCH == 0 or index + 1 == persons:
            yield rows
            rows = []
            if progress is not None:
                progress(index + 1, persons)
    yield rows


@dataclass
class _Candidate:
    tier: int
    score: float
    primary: bool
    matched: str
    how: str


#: The phonetic codes of the name parts searches met last. A name search codes
#: every name of every candidate it decrypts, and the same first and last
#: names come back across persons (seed 1 has about 900 different ones); a
#: part, never a person's record, is what is kept.
_coded = functools.lru_cache(maxsize=1024)(phonetic)

#: A search's own rule: from the candidate persons, those it finds and how.
_Rule = Callable[[list[Record]], dict[str, _Candidate]]


class LeisData:
    """The DHS LEIS data set: the store, searched and answered as LESC does.

    Open it with :meth:`open`. Every method is synchronous and may be called
    from any thread; the asyncio side calls them with ``asyncio.to_thread``.
    """

    def __init__(self, store: LeisStore, built: bool = False) -> None:
        """Use :meth:`open`; this wraps an already built store."""
        self.store = store
        #: Whether opening built the data (else it was found built).
        self.built = built

    @classmethod
    def open(cls, path: Path, seed: int = 1, persons: int = 10000,
             progress: Callable[[int, int], None] | None = None,
             keyring: Keyring | None = None) -> LeisData:
        """Open the data set at ``path``, building it first if needed.

        A new file, one with an older layout, or one built from another seed
        or size gets the fixed test records and ``persons`` generated persons
        from ``random.Random(seed)``, in one transaction (records an agency
        loaded are kept across a rebuild for another seed or size; a file of
        the clear-text layout is migrated). ``progress(done, total)`` is called
        as the build goes; an up-to-date file is reused at once without calling it.

        Every person is sealed under ``keyring``, by default the message-text
        keyring (:func:`nlets_switch.store.textcrypt.data_keyring`, made when
        missing). Raises :class:`LeisKeyError` (a ``ValueError`` with a
        one-line message) when the file was sealed under another keyring.
        """
        return cls._built(lambda c: LeisStore.open(Path(path), c), seed, persons, progress,
                          keyring)

    @classmethod
    def open_url(cls, url: str, seed: int = 1, persons: int = 10000,
                 progress: Callable[[int, int], None] | None = None,
                 keyring: Keyring | None = None, copy_from: Path | None = None) -> LeisData:
        """:meth:`open` on the PostgreSQL store at ``url`` (its ``leis_*`` tables,
        docs/cluster.md): one data set for every cluster node, built by the first
        that finds it missing while the others wait. StoreError (one line) when the
        database cannot be reached or is at a newer schema version. ``copy_from``:
        a file built for the same seed, size and keyring (the build cache), copied
        rather than building when the database has none."""
        from nlets_switch.store.postgres_leis import open_leis

        return cls._built(lambda c: open_leis(url, c), seed, persons, progress, keyring,
                          copy_from)

    @classmethod
    def _built(cls, open_store: Callable[[LeisCipher], LeisStore], seed: int, persons: int,
               progress: Callable[[int, int], None] | None,
               keyring: Keyring | None, copy_from: Path | None = None) -> LeisData:
        if persons < 0:
            raise ValueError("persons must not be negative")
        cipher = LeisCipher(keyring if keyring is not None else textcrypt.data_keyring())
        store = open_store(cipher)
        source = LeisStore.open(copy_from, cipher) if copy_from is not None else None
        try:
            built = store.ensure_built(
                {"seed": str(seed), "persons": str(persons)},
                lambda loaded: _batches(seed, persons, progress, loaded), person_row, source)
        except BaseException:
            store.close()
            raise
        finally:
            if source is not None:
                source.close()
        return cls(store, built)

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None when the data is in a PostgreSQL store."""
        return self.store.path

    @property
    def where(self) -> str:
        """Where the data is, for messages (the file, or the database)."""
        return self.store.where

    def close(self) -> None:
        """Close the database file."""
        self.store.close()

    def backup_to(self, target: Path) -> None:
        """A consistent copy of the whole data set at ``target``."""
        self.store.backup_to(target)

    def __enter__(self) -> LeisData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self) -> int:
        """How many persons the data set holds."""
        return self.store.count()

    def get(self, din: str) -> Person | None:
        """The full record of one person, or None."""
        return self.store.get(din.strip().upper())

    # -- GPQ -------------------------------------------------------------------

    def search(self, fields: Mapping[str, str], limit: int = DEFAULT_LIMIT, *,
               today: _dt.date | None = None) -> SearchResult:
        """Search as a GPQ does (PROTOCOL part 5), best matches first.

        ``fields`` are the GPQ's fields by tag. The first present of ``DIN``,
        ``SOC``, ``ARN``, ``PPN``, ``ADR``, ``NAM`` decides the search; a
        ``DOB`` narrows any of them to persons with that date of birth, a
        ``SEX`` of M or F to persons of that sex or of unknown sex.
        Name order: primary name exact, alias exact, primary name phonetic,
        alias phonetic; within the phonetic tiers by Jaro-Winkler similarity;
        ties by DIN. A query that names no search field, or a malformed
        value, raises :class:`MessageError`.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        f = {k.strip().upper(): v.strip() for k, v in fields.items() if v and v.strip()}
        dob = normalize_dob(f["DOB"], today) if "DOB" in f else ""
        store = self.store
        with store.locked():
            by, ids, rule = self._plan(f)
            # The blind index gives candidate rows (a DOB narrows them before
            # any is decrypted); each candidate is then checked by the rule itself.
            if dob and ids:
                ids &= store.find([("dob", dob)])
            persons = [r for _, r in store.records(ids)]
        if dob:
            persons = [p for p in persons if dob in p.dobs]
        sex = f.get("SEX", "").upper()
        if sex in ("M", "F"):
            persons = [p for p in persons if p.sex in (sex, "U")]
        found = rule(persons)
        by_din = {p.din: p for p in persons}
        order = sorted(found.items(),
                       key=lambda kv: (kv[1].tier, -kv[1].score, not kv[1].primary, kv[0]))
        hits = tuple(_hit(by_din[din], c, dob) for din, c in order[:limit])
        return SearchResult(hits=hits, total=len(order), limit_reached=len(order) > limit,
                            by=by)

    def _plan(self, f: Mapping[str, str]) -> tuple[str, set[int], _Rule]:
        """What the search is by, its candidate rows and its rule."""
        rule: _Rule
        if "DIN" in f:
            by = "DIN"
            din = f["DIN"].upper()
            ids, rule = self.store.find([("din", din)]), functools.partial(_by_din, din)
        elif "SOC" in f:
            by = "SOC"
            soc = digits(f["SOC"])
            if not re.fullmatch(r"\d{9}", soc):
                raise MessageError(ErCode.FORMAT, "SOC/ MUST BE 9 DIGITS")
            ids, rule = self._by_ident("SOC", soc)
        elif "ARN" in f:
            by = "ARN"
            arn = normalize_arn(f["ARN"])
            if arn is None:
                raise MessageError(ErCode.FORMAT, "ARN/ MUST BE 8 OR 9 DIGITS")
            ids, rule = self._by_ident("ARN", arn)
        elif "PPN" in f:
            by = "PPN"
            ppn = re.sub(r"[\s-]", "", f["PPN"].upper())
            if not re.fullmatch(r"[A-Z0-9]{1,20}", ppn):
                raise MessageError(ErCode.FORMAT, "PPN/ MUST BE UP TO 20 LETTERS OR DIGITS")
            ids, rule = self._by_ident("PPN", ppn)
        elif "ADR" in f:
            by = "ADR"
            adr = normalize_address(f["ADR"])
            if not adr:
                raise MessageError(ErCode.FORMAT, "ADR/ IS EMPTY")
            ids, rule = self._by_address(adr)
        elif "NAM" in f:
            by = "NAM"
            name = parse_name(f["NAM"])
            if not _NON_LETTERS.sub("", name.last):
                raise MessageError(ErCode.FORMAT, "NAM/ MUST BE LAST,FIRST MIDDLE")
            ids, rule = self._by_name(name)
        else:
            raise MessageError.naming(ErCode.FIELDS_MISSING, "ONE OF",
                                      ("NAM", "SOC", "PPN", "ARN", "ADR", "DIN"))
        return by, ids, rule

    def _by_ident(self, kind: str, value: str) -> tuple[set[int], _Rule]:
        def rule(persons: list[Record]) -> dict[str, _Candidate]:
            return {p.din: _Candidate(0, 1.0, True, "", kind) for p in persons
                    if [kind, value] in p.identifiers}

        return self.store.find([("ident", f"{kind}:{value}")]), rule

    def _by_address(self, adr: str) -> tuple[set[int], _Rule]:
        """Exact address first, then addresses that start with the query,
        then those that contain it as whole words; current addresses before
        former ones. The candidates are the persons with every word of the query."""
        ids: set[int] | None = None
        for word in sorted(set(adr.split())):
            with_word = self.store.find([("adr", word)])
            ids = with_word if ids is None else ids & with_word
        padded = f" {adr} "

        def rule(persons: list[Record]) -> dict[str, _Candidate]:
            found: dict[str, _Candidate] = {}

            def offer(din: str, tier: int, current: bool) -> None:
                cand = _Candidate(tier, 1.0 if current else 0.5, True, "", "ADR")
                old = found.get(din)
                if old is None or (cand.tier, -cand.score) < (old.tier, -old.score):
                    found[din] = cand

            for p in persons:
                for address, city, state, _since, until in p.locations:
                    norm = location_address(address, city, state)
                    current = not until
                    # The word-boundary check keeps "12 MAIN ST" from matching
                    # "12 MAIN STATION RD".
                    if norm.startswith(adr):
                        rest = norm[len(adr):]
                        if not rest:
                            offer(p.din, 0, current)
                        elif rest.startswith(" "):
                            offer(p.din, 1, current)
                    if f" {norm} ".find(padded) > 0:  # as whole words, not at the start
                        offer(p.din, 2, current)
            return found

        return ids or set(), rule

    def _by_name(self, q: Name) -> tuple[set[int], _Rule]:
        q_last_mp, q_last_ny = phonetic(q.last)
        q_first_mp, q_first_ny = phonetic(q.first)
        ids = self.store.find([("last", q.last), ("last_mp", q_last_mp),
                               ("last_ny", q_last_ny)])

        def rule(persons: list[Record]) -> dict[str, _Candidate]:
            found: dict[str, _Candidate] = {}
            for p in persons:
                for seq, full in enumerate((p.name, *p.aliases)):
                    n = parse_name(full)
                    last_mp, last_ny = _coded(n.last)
                    # A name or alias whose last name is the query's or sounds like it.
                    if not (last_mp == q_last_mp or last_ny == q_last_ny or n.last == q.last):
                        continue
                    if q.first:
                        first_mp, first_ny = _coded(n.first)
                        if not first_matches(q.first, q_first_mp, q_first_ny,
                                              n.first, first_mp, first_ny):
                            continue
                    alias = seq > 0
                    exact = (n.last == q.last and (not q.first or n.first == q.first)
                             and middle_compatible(q.middle, n.middle))
                    if exact:
                        tier, how = (1, "ALIAS") if alias else (0, "NAME")
                        score = 1.0
                    else:
                        # A phonetic match through the primary name ranks above
                        # one through an alias: GARSIA,MARIA finds GARCIA,MARIA
                        # before a GARCIA,MARIO who once used GARSIA,MARIO,
                        # though both are one letter off.
                        tier, how = (3, "PHONETIC ALIAS") if alias else (2, "PHONETIC")
                        score = name_similarity(q, n.last, n.first, n.middle)
                    cand = _Candidate(tier, score, not alias, full if alias else "", how)
                    old = found.get(p.din)
                    if old is None or ((cand.tier, -cand.score, not cand.primary)
                                       < (old.tier, -old.score, not old.primary)):
                        found[p.din] = cand
            return found

        return ids, rule

    def gpq_text(self, fields: Mapping[str, str], limit: int = DEFAULT_LIMIT, *,
                 today: _dt.date | None = None) -> str:
        """The whole text of the GPR answering a GPQ: the full record for a
        ``DIN/`` query, the summary otherwise, ``NO RECORD`` when nothing."""
        f = {k.strip().upper(): v for k, v in fields.items()}
        if (f.get("DIN") or "").strip():
            person = self.get(f["DIN"])
            return format_record(person) if person is not None else NO_RECORD
        return format_summary(self.search(fields, limit, today=today), limit)

    # -- IAQ -------------------------------------------------------------------

    def find_for_iaq(self, fields: Mapping[str, str], *,
                     today: _dt.date | None = None) -> Person | None:
        """The person an IAQ asks about, or None.

        By ``ARN`` when the IAQ carries one (and it is on file); otherwise by
        ``NAM`` and ``DOB`` (MMDDYY or CCYYMMDD, see :func:`normalize_dob`),
        skipping persons whose sex differs from the IAQ's ``SEX``.
        """
        f = {k.strip().upper(): v.strip() for k, v in fields.items() if v and v.strip()}
        if "ARN" in f and normalize_arn(f["ARN"]) is not None:
            result = self.search({"ARN": f["ARN"]}, limit=1)
            if result.hits:
                return self.get(result.hits[0].din)
        if "NAM" not in f or "DOB" not in f:
            return None
        result = self.search({"NAM": f["NAM"], "DOB": f["DOB"]}, limit=50, today=today)
        sex = f.get("SEX", "U").upper()
        for hit in result.hits:
            if sex in ("M", "F") and hit.sex in ("M", "F") and hit.sex != sex:
                continue
            return self.get(hit.din)
        return None

    def iar_text(self, fields: Mapping[str, str], *, today: _dt.date | None = None) -> str:
        """The whole text of the IAR answering an IAQ."""
        return format_iar(fields, self.find_for_iaq(fields, today=today))

    # -- loading an agency's own data -----------------------------------------

    def load_file(self, path: Path) -> int:
        """Load an agency's own persons from a JSON Lines file.

        Every row is checked first; if any is bad, :class:`LeisLoadError`
        lists every problem as ``line N: field: problem`` and nothing is
        loaded. Otherwise all rows go in one transaction, replacing persons
        with the same DIN. Returns how many persons were loaded.
        """
        persons = parse_load_file(Path(path))
        self.store.replace([person_row(p, LOADED) for p in persons])
        return len(persons)


def _by_din(din: str, persons: list[Record]) -> dict[str, _Candidate]:
    return {p.din: _Candidate(0, 1.0, True, "", "DIN") for p in persons if p.din == din}


def _hit(p: Record, c: _Candidate, dob: str) -> Hit:
    return Hit(din=p.din, name=p.name, dob=dob or (p.dobs[0] if p.dobs else ""), sex=p.sex,
               matched=c.matched, how=c.how, score=c.score)
