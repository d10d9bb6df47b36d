"""A fixed set of grounded prompts for bench/speculation.py: four kinds, eight each
(summarise a ~400-token passage, extract JSON fields from a document, fix a ~40-line
function, answer a question by quoting the passage). Built from templates so that the
set is fixed and needs no data files."""

from __future__ import annotations

KINDS = ("summarise", "extract", "fix", "quote")
COPY = "copy"  # not one of the kinds: the case where drafts are right most often

_COMPANIES = [
    ("Harbor Lane Bakery", "Portsmouth", 1987, "Elena Marsh", 42, "sourdough"),
    ("Northwind Cycles", "Leeds", 2004, "Tom Okafor", 118, "touring bicycles"),
    ("Blue Fern Textiles", "Dundee", 1952, "Agnes Wu", 260, "wool blankets"),
    ("Copperline Robotics", "Eindhoven", 2015, "Pieter Smits", 75, "warehouse robots"),
    ("Silver Birch Press", "Galway", 1979, "Niamh Doyle", 31, "poetry books"),
    ("Redstone Ceramics", "Stoke", 1931, "Harold Finch", 190, "glazed tiles"),
    ("Tidewater Instruments", "Bergen", 1998, "Ingrid Lund", 56, "sailing compasses"),
    ("Juniper Orchards", "Hereford", 1964, "Margaret Hale", 88, "cider apples"),
]

_PASSAGE = (
    "{name} was founded in {year} in {city} by {founder}, who had spent ten years "
    "learning the trade before opening a small workshop near the old market. In its "
    "first year the company made {product} for a handful of local customers, and "
    "{founder} kept every order in a single leather notebook that is still on display "
    "in the front office. By the end of its first decade, {name} had moved to a larger "
    "building on the river and hired its first apprentices. The company grew slowly "
    "but steadily, refusing several offers to merge with larger firms because "
    "{founder} believed that quality would suffer. Today {name} employs {staff} "
    "people, most of whom live within a few miles of the workshop in {city}. The "
    "company still makes {product}, but it now sells them in more than twenty "
    "countries through a network of small shops and an online store. Every spring, "
    "{name} opens its doors to visitors for a week, and students from the local "
    "college are invited to spend a day working beside the staff. In a recent "
    "interview, the current director said that the most important lesson from "
    "{founder} was to listen carefully to customers and to fix every mistake at once. "
    "The company has won several regional awards for craftsmanship, including the "
    "{city} Guild Medal, which it received three times in a row. {name} also supports "
    "a training fund that pays for young people to learn traditional skills. When "
    "asked about the future, the director said that {name} would stay in {city} and "
    "would keep making {product} the way {founder} had taught them."
)

_QUESTIONS = [
    "Who founded the company, and when?",
    "How many people does the company employ today?",
    "What did the company make in its first year?",
    "What award has the company won?",
]

_FUNCTION = '''def summarize_{thing}s(records, min_{field}=0):
    """Groups {thing} records by region and returns totals and averages."""
    totals = {{}}
    counts = {{}}
    largest = {{}}
    skipped = 0
    for record in records:
        region = record.get("region")
        if region is None:
            skipped += 1
            continue
        value = record.get("{field}", 0)
        if value < min_{field}:
            skipped += 1
            continue
        if region not in totals:
            totals[region] = 0
            counts[region] = 0
            largest[region] = value
        totals[region] += value
        counts[region] += 1
        if value > largest[region]:
            largest[region] = value
    report = []
    for region in sorted(totals):
        average = totals[region] / counts[region] - 1
        report.append(
            {{
                "region": region,
                "total": totals[region],
                "count": counts[region],
                "average": round(average, 2),
                "largest": largest[region],
            }}
        )
    return {{
        "regions": report,
        "skipped": skipped,
        "grand_total": sum(totals.values()),
    }}
'''

_THINGS = [
    ("sale", "amount"),
    ("order", "price"),
    ("shipment", "weight"),
    ("invoice", "total"),
    ("booking", "nights"),
    ("donation", "value"),
    ("delivery", "distance"),
    ("payment", "fee"),
]


def _passage(i: int, short: bool) -> str:
    name, city, year, founder, staff, product = _COMPANIES[i]
    text = _PASSAGE.format(
        name=name, city=city, year=year, founder=founder, staff=staff, product=product
    )
    if short:  # its first sentences and the one with the staff count (~110 tokens)
        sentences = text.split(". ")
        text = ". ".join(sentences[:3] + sentences[5:6]) + "."
    return text


def grounded_prompts(short: bool = False) -> list[tuple[str, str]]:
    """(kind, prompt) pairs: 8 of each kind, 32 in all, always the same. `short`: the
    passages cut to four sentences and the functions to their first loop."""
    out: list[tuple[str, str]] = []
    for i in range(8):
        text = _passage(i, short)
        out.append(("summarise", f"{text}\n\nSummarise the passage above in a few sentences."))
    for i in range(8):
        text = _passage(i, short)
        out.append(
            (
                "extract",
                f"{text}\n\nExtract these fields from the document above as JSON: company, "
                "city, year_founded, founder, employees, product. Answer with the JSON only.",
            )
        )
    for thing, field in _THINGS:
        code = _FUNCTION.format(thing=thing, field=field)
        if short:  # the loop, and the average's line with its bug
            lines = code.splitlines(keepends=True)
            code = "".join(lines[:16]) + "    average = sum(totals.values()) / len(totals) - 1\n"
            code += "    return average\n"
        out.append(
            (
                "fix",
                "The average in this function is wrong. Fix the bug and give the whole "
                f"corrected function.\n\n```python\n{code}```",
            )
        )
    for i in range(8):
        text = _passage(i, short)
        question = _QUESTIONS[i % len(_QUESTIONS)]
        out.append(
            (
                "quote",
                f"{text}\n\nQuestion: {question} Answer by quoting the sentence of the "
                "passage that says so.",
            )
        )
    return out


def copy_prompts(short: bool = False) -> list[tuple[str, str]]:
    """(COPY, prompt) pairs: the 8 passages, each to be repeated word for word."""
    return [
        (COPY, f"{_passage(i, short)}\n\nRepeat the passage above word for word.") for i in range(8)
    ]
