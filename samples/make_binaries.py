"""Write the sample PDF and DOCX from the text below.

Run from the repository root: `python samples/make_binaries.py [OUT_DIR]` (default
`samples/docs`; needs fpdf2 and python-docx, both in the `test` extra). Dates and metadata are
fixed and the .docx archive gets fixed timestamps, so re-running with the same library versions
gives identical bytes.
"""

from __future__ import annotations

import io
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import docx
from fpdf import FPDF

FIXED_DATE = datetime(2024, 1, 1, tzinfo=UTC)
OUT_DIR = Path(__file__).resolve().parent / "docs"

# Core PDF fonts only cover Latin-1, so this text sticks to plain ASCII punctuation.
PRINTING_PRESS_TITLE = "A short history of the printing press"
PRINTING_PRESS: list[tuple[str, list[str]]] = [
    (
        "Before Gutenberg",
        [
            "Printing began in East Asia. Chinese printers were carving whole pages into wooden "
            "blocks by the seventh century, and the Diamond Sutra, found at Dunhuang, carries a "
            "date equivalent to 868 and is the oldest known dated printed book. Around 1040 the "
            "Chinese artisan Bi Sheng made movable type from baked clay. In Korea, printers cast "
            "movable type in metal: the Jikji, a Buddhist text printed in 1377, is the oldest "
            "surviving book printed that way.",
            "In medieval Europe, books were copied by hand, mostly by scribes in monasteries and, "
            "later, in workshops serving universities. A single Bible could take a scribe more "
            "than a year. Paper, which had reached Europe from the Islamic world, was becoming "
            "cheaper than parchment, and demand for reading matter was growing.",
        ],
    ),
    (
        "Gutenberg's system",
        [
            "Johannes Gutenberg, a goldsmith from Mainz, developed a complete printing system "
            "in the 1440s and early 1450s. Its parts worked together. A hand mould let a worker "
            "cast large numbers of identical letters quickly from an alloy of lead, tin and "
            "antimony that melted easily and hardened fast. An oil-based ink stuck to metal "
            "type far better than the water-based inks used for woodblocks. A screw press, "
            "adapted from the presses used for wine and olive oil, pressed paper evenly onto "
            "the inked type.",
            "The best known result is the Gutenberg Bible, completed in Mainz around 1455. "
            "Its pages have 42 lines in two columns, and about 180 copies were printed, some "
            "on paper and some on vellum. Around fifty copies, complete or partial, survive "
            "today. Gutenberg himself did not grow rich: a lawsuit with his financial backer, "
            "Johann Fust, cost him much of his workshop.",
        ],
    ),
    (
        "The spread of print",
        [
            "Printing spread with remarkable speed. By 1500 there were presses in more than two "
            "hundred towns across Europe, and they had produced millions of copies. Books "
            "printed before 1501 are called incunabula, from the Latin for cradle. Venice became "
            "the leading centre of the trade. There, Aldus Manutius published small, portable "
            "editions of classical authors and introduced italic type in 1501. William Caxton "
            "set up the first press in England, at Westminster, in 1476.",
            "Because every copy of an edition was the same, readers in different cities could "
            "refer to the same page and the same figure. Errors could be listed and corrected in "
            "the next edition instead of multiplying with each hand copy.",
        ],
    ),
    (
        "Consequences",
        [
            "Print changed religion, science and politics. Martin Luther's writings of 1517 and "
            "the years after circulated in huge numbers of cheap pamphlets, helping the "
            "Reformation spread far faster than earlier reform movements. Scientists could "
            "publish identical tables, maps and diagrams and build on each other's work. The "
            "historian Elizabeth Eisenstein argued in 1979 that this standardisation was one of "
            "the foundations of the Scientific Revolution. Printed vernacular books also helped "
            "to fix spelling and grammar in languages such as English, German and French.",
        ],
    ),
    (
        "Later developments",
        [
            "The basic hand press changed little for three and a half centuries. In 1814 The "
            "Times of London was printed on a steam-powered press built by Friedrich Koenig, "
            "which made over a thousand impressions an hour. Rotary presses, which print from a "
            "rotating cylinder, followed in the 1840s and made cheap daily newspapers possible. "
            "In 1886 Ottmar Mergenthaler's Linotype machine began casting whole lines of type "
            "from a keyboard, ending centuries of setting letters by hand. Offset lithography "
            "and, later, digital typesetting replaced metal type during the twentieth century, "
            "but the idea at the heart of Gutenberg's system, reusable parts producing identical "
            "copies, lives on.",
        ],
    ),
]

HOUSEPLANTS_TITLE = "Caring for houseplants"
HOUSEPLANTS: list[tuple[str, list[str]]] = [
    (
        "Light",
        [
            "Light is the food supply of a plant, and too little light is behind most slow, "
            "leggy or pale growth. Most common houseplants come from the floor of tropical "
            "forests and prefer bright, indirect light: near a window, but out of the strongest "
            "direct sun, which can scorch their leaves. A south- or west-facing window gives the "
            "most light in the northern hemisphere; in the southern hemisphere, north and west.",
            "Light falls off quickly with distance from a window. A plant two metres into a room "
            "may receive only a small fraction of the light on the windowsill, even if the room "
            "looks bright to us. Turn pots a quarter turn every week or two so that plants grow "
            "evenly instead of leaning towards the glass.",
        ],
    ),
    (
        "Watering",
        [
            "More houseplants are killed by too much water than by too little. Roots need air as "
            "well as water, and soil that stays soggy starves them of oxygen and lets root rot "
            "set in. Instead of watering on a fixed schedule, check the soil: for most plants, "
            "water when the top two to three centimetres feel dry. Water thoroughly until it "
            "runs out of the drainage holes, then empty the saucer.",
            "Plants need less water in winter, when growth slows and light is weaker. Yellowing "
            "lower leaves and soil that smells sour suggest overwatering; crisp brown leaf edges "
            "and soil pulling away from the pot suggest underwatering.",
        ],
    ),
    (
        "Soil, pots and feeding",
        [
            "Always use pots with drainage holes. Decorative pots without holes can hold a "
            "plastic nursery pot inside them. Repot when roots circle the bottom of the pot or "
            "grow out of the holes, usually every one to two years, and move up only one size, "
            "a pot two to five centimetres wider. A much larger pot holds wet soil that the roots "
            "cannot use.",
            "Feed during the growing season, spring and summer, with a balanced liquid "
            "fertiliser every four to six weeks, diluted to half the strength on the label. Do "
            "not feed plants that are dormant or struggling: fertiliser cannot make up for poor "
            "light, and salts from it can build up and burn the roots.",
        ],
    ),
    (
        "Common pests",
        [
            "Spider mites leave fine webbing and speckled leaves and thrive in dry air; rinse the "
            "plant in the shower and raise the humidity. Mealybugs look like small tufts of "
            "cotton in leaf joints; dab them with a cotton bud dipped in rubbing alcohol. Fungus "
            "gnats are tiny flies whose larvae live in constantly wet soil; letting the top of "
            "the soil dry out between waterings usually solves the problem.",
        ],
    ),
]
EASY_PLANTS = [
    ("Plant", "Light", "Watering", "Safe for cats and dogs"),
    ("Snake plant", "Low to bright", "When soil is fully dry", "No"),
    ("Pothos", "Low to bright indirect", "When top few cm are dry", "No"),
    ("ZZ plant", "Low to bright indirect", "When soil is fully dry", "No"),
    ("Spider plant", "Bright indirect", "When top few cm are dry", "Yes"),
    ("Peace lily", "Medium indirect", "When leaves just start to droop", "No"),
    ("Monstera", "Bright indirect", "When top half of soil is dry", "No"),
]


def write_pdf(path: Path) -> None:
    pdf = FPDF(format="A4")
    pdf.set_title(PRINTING_PRESS_TITLE)
    pdf.set_author("askdocs sample corpus")
    pdf.set_producer("askdocs samples/make_binaries.py")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=18)
    pdf.multi_cell(0, 10, PRINTING_PRESS_TITLE)
    for heading, paragraphs in PRINTING_PRESS:
        pdf.ln(4)
        pdf.set_font("Helvetica", style="B", size=14)
        pdf.multi_cell(0, 8, heading)
        pdf.set_font("Helvetica", size=12)
        for paragraph in paragraphs:
            pdf.ln(2)
            pdf.multi_cell(0, 6.5, paragraph)
    if pdf.page_no() < 2:
        raise SystemExit("the sample PDF must have at least two pages")
    pdf.output(str(path))


def write_docx(path: Path) -> None:
    document = docx.Document()
    properties = document.core_properties
    properties.title = HOUSEPLANTS_TITLE
    properties.author = "askdocs sample corpus"
    properties.last_modified_by = "askdocs sample corpus"
    properties.created = properties.modified = FIXED_DATE.replace(tzinfo=None)
    properties.revision = 1
    document.add_paragraph(HOUSEPLANTS_TITLE, style="Title")
    document.add_paragraph(
        "Most houseplants are forgiving once their basic needs are met: enough light, water "
        "at the right time, a pot that drains, and a little food while they grow."
    )
    for heading, paragraphs in HOUSEPLANTS:
        document.add_heading(heading, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    document.add_heading("Six easy plants", level=1)
    document.add_heading("Quick reference", level=2)
    table = document.add_table(rows=len(EASY_PLANTS), cols=len(EASY_PLANTS[0]))
    table.style = "Table Grid"
    for row, values in zip(table.rows, EASY_PLANTS, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_paragraph(
        "Plants marked No contain compounds such as calcium oxalate crystals that irritate "
        "the mouth and stomach of pets that chew them. Keep them out of reach."
    )
    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(_with_fixed_timestamps(buffer.getvalue()))


def _with_fixed_timestamps(archive: bytes) -> bytes:
    """Rewrite a zip so every entry carries the same date; python-docx stamps the current time."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(archive)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info))
    return out.getvalue()


def main(argv: list[str]) -> None:
    out_dir = Path(argv[1]) if len(argv) > 1 else OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    write_pdf(out_dir / "printing-press-history.pdf")
    write_docx(out_dir / "houseplant-care.docx")
    print(f"wrote printing-press-history.pdf and houseplant-care.docx to {out_dir}")


if __name__ == "__main__":
    main(sys.argv)
