"""The order a participant sees, drawn from (study seed, participant seed, set, what is shuffled).

The page draws it in JavaScript and `user-study-results` draws it again here, so that every answer file
can be checked against the order it claims was shown: the two must be the same generator bit for bit.
The generator is mulberry32 seeded by a murmur3 finaliser of the four numbers (32-bit integer arithmetic,
which JavaScript has through Math.imul and >>> 0); PAGE_JS below is its JavaScript twin.
"""
from __future__ import annotations

MASK = 0xFFFFFFFF
# What is shuffled, as the page names it: the classes offered for the guess, and the methods at A, B, C.
CHOICES, METHODS = 1, 2


def _imul(a: int, b: int) -> int:
    return (a * b) & MASK


def fmix32(h: int) -> int:
    h &= MASK
    h ^= h >> 16
    h = _imul(h, 0x85EBCA6B)
    h ^= h >> 13
    h = _imul(h, 0xC2B2AE35)
    h ^= h >> 16
    return h


def stream_seed(study_seed: int, participant: int, set_index: int, what: int) -> int:
    h = fmix32(study_seed)
    for value in (participant, set_index, what):
        h = fmix32(h ^ fmix32(value))
    return h


def mulberry32(state: int):
    """Uniform floats in [0, 1) (multiples of 2^-32), as the page's generator gives them."""
    state &= MASK
    while True:
        state = (state + 0x6D2B79F5) & MASK
        t = _imul(state ^ (state >> 15), state | 1)
        t = ((t + _imul(t ^ (t >> 7), t | 61)) & MASK) ^ t
        yield ((t ^ (t >> 14)) & MASK) / 4294967296


def shuffled(items: list, study_seed: int, participant: int, set_index: int, what: int) -> list:
    """Fisher-Yates with the stream of (study, participant, set, what)."""
    items = list(items)
    draw = mulberry32(stream_seed(study_seed, participant, set_index, what))
    for i in range(len(items) - 1, 0, -1):
        j = int(next(draw) * (i + 1))
        items[i], items[j] = items[j], items[i]
    return items


PAGE_JS = """
function fmix32(h) {
  h = h >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x85EBCA6B) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, 0xC2B2AE35) >>> 0;
  h ^= h >>> 16; return h >>> 0;
}
function streamSeed(studySeed, participant, setIndex, what) {
  let h = fmix32(studySeed);
  for (const v of [participant, setIndex, what]) h = fmix32((h ^ fmix32(v)) >>> 0);
  return h;
}
function mulberry32(state) {
  state = state >>> 0;
  return function () {
    state = (state + 0x6D2B79F5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1) >>> 0;
    t = (((t + (Math.imul(t ^ (t >>> 7), t | 61) >>> 0)) >>> 0) ^ t) >>> 0;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function shuffled(items, studySeed, participant, setIndex, what) {
  const out = items.slice();
  const draw = mulberry32(streamSeed(studySeed, participant, setIndex, what));
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(draw() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
"""
