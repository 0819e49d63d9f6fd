#!/usr/bin/python3
"""population.py — a synthetic city's children and four agencies' extracts
of them, with the errors real extracts have, for measuring EHX's matching
(make bench; docs/PERFORMANCE.md).

Generated, never real: names are drawn from tables of common English given
names and surnames with made-up frequencies; postcodes have the Royal Mail
shape in York's YO districts but are random; NHS numbers and UPNs are
random numbers with valid check digits.

    population.py CHILDREN OUTDIR [--seed N]

writes OUTDIR/{health,school,police,housing}.jsonl, one identity a line as
`ehx import` reads them, each with "truth": the child's index (which the
broker never sees; "twin" too, for a twin: the other's), and
OUTDIR/summary.json with the counts of each kind
of error put in.

The city: households of one to four children sharing a surname, address
and UPRN (one in ten children with another surname: stepfamilies); one
birth in 65 is twins (same date, address and surname, another given name).
The extracts:
  health   every child: NHS number, names, date, sex, postcode, UPRN;
           few errors (1% typing slips, 4% an old address)
  school   children of 4-16 on roll: UPN, admission number, names, date,
           sex, postcode, 20% with the NHS number; slips, familiar names,
           hyphenated surnames, house moves
  police   one child in ten: a person id, names as heard (familiar names,
           slips, names the wrong way round, a previous surname), dates
           with day and month swapped or one part wrong, old or missing
           addresses, sex often missing, no NHS number
  housing  three households in ten: a tenancy id per child, names, the
           date sometimes missing, postcode and UPRN always
"""
import datetime
import json
import os
import random
import sys

BOYS = """Oliver George Noah Arthur Harry Leo Muhammad Jack Charlie Oscar Jacob
Henry Thomas Freddie Alfie Theo William Theodore Archie Joshua Alexander James
Isaac Edward Lucas Tommy Finley Max Logan Ethan Mohammed Teddy Benjamin Arlo
Joseph Sebastian Harrison Elijah Adam Daniel Samuel Louie Mason Reuben Albie
Rory Jaxon Hugo Luca Zachary Reggie Hunter Louis Dylan Albert David Jude
Frankie Roman Ezra Toby Riley Carter Ronnie Frederick Gabriel Stanley Bobby
Jesse Michael Elliot Grayson Mohammad Liam Jenson Ellis Harley Harvey Jayden
Jake Ralph Rowan Elliott Jasper Ollie Charles Finn Felix Caleb Chester Jackson
Hudson Leon Ibrahim Ryan Blake Alfred Oakley Matthew Luke Kai Nathan Aaron
Callum Connor Kyle Liam Owen Rhys Tyler Ben Sam Will Dominic Patrick Christopher
Andrew Anthony Richard Robert Stephen Peter Philip Jonathan Nicholas Edward""".split()
GIRLS = """Olivia Amelia Isla Ava Ivy Freya Lily Florence Mia Willow Rosie Sophia
Isabella Grace Daisy Sienna Poppy Elsie Emily Ella Evelyn Phoebe Sofia Evie
Charlotte Harper Millie Matilda Maya Sophie Alice Emilia Isabelle Ruby Sienna
Ada Aria Ellie Bonnie Esme Hallie Eva Maisie Ayla Hannah Lottie Mila Penelope
Delilah Violet Layla Arabella Isabel Jessica Thea Luna Molly Eliza Margot Iris
Nancy Lilly Maryam Elizabeth Robyn Scarlett Lyla Mabel Lucy Annabelle Harriet
Georgia Orla Zara Darcie Eleanor Lola Beatrice Myla Heidi Clara Lydia Emma
Aurora Imogen Summer Ophelia Hazel Chloe Emmeline Sara Edith Pippa Amber
Megan Katherine Rebecca Abigail Victoria Jennifer Susan Margaret Patricia
Samantha Natalie Lauren Amy Holly Jasmine Leah Niamh Caitlin Bethany Kayla
Paige Courtney Shannon Jade Chelsea Tia Demi Nicola Amanda Rachel""".split()
SURNAMES = """Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson
Roberts Robinson Thompson Wright Walker White Edwards Hughes Green Hall Lewis
Harris Clarke Patel Jackson Wood Turner Martin Cooper Hill Ward Morris Moore
Clark Lee King Baker Harrison Morgan Allen James Scott Phillips Watson Davis
Parker Price Bennett Young Griffiths Mitchell Kelly Cook Carter Richardson
Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan Marshall Anderson
Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb Rogers
Gray Mason Ali Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes
Knight Lloyd Butler Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey
Graham Pearson Ahmed Fletcher Walsh Kaur Gibson Howard Andrews Stewart Elliott
Reynolds Saunders Payne Fox Ford Pearce Day Brooks West Lawrence Cole Atkinson
Bradley Spencer Gill Dawson Ball Burton OBrien Watts Rose Booth Perry Ryan
Grant Wells Armstrong Francis Rees Hayes Hart Hudson Newman Barrett Webster
Hunter Gregory Carr Lowe Page Marsh Riley Dunn Woods Parsons Berry Stone
Reid Holland Hawkins Harding Porter Robertson Newton Oliver Reed Kennedy
Williamson Bird Gardner Shah Dean Lane Cooke Bates Henderson Parry Burgess
Bishop Walton Burns Nicholson Shepherd Ross Cross Long Freeman Warren Nicholls
Hamilton Byrne Sutton McDonald Yates Hodgson Robson Curtis Hopkins OConnor
Harper Coleman Watkins Moss McCarthy Chambers ONeill Griffin Sharp Hardy
Wheeler Potter Osborne Johnston Gordon Doyle Wallace George Jordan Hutchinson
Rowe Burke May Pritchard Gilbert Willis Higgins Read Miles Stevenson Stephenson
Hammond Arnold Buckley Walters Hewitt Barber Nelson Slater Austin Sullivan
Whitehead Mann Frost Lambert Stephens Blake Akhtar Lynch Goodwin Barton Woodward
Thomson Cunningham Quinn Barnett Baxter Bibi Clayton Nash Greenwood Jennings
Holt Kemp Poole Gallagher Bond Stokes Tucker Davidson Fowler Heath Norman
Middleton Lawson Banks French Stanley Jarvis Gibbs Ferguson Hayward Carroll
Douglas Dickinson Todd Barlow Peters Lucas Knowles Hartley Miah Simmons Morton
Alexander Field Morrison Norris Townsend Preston Hancock Thornton Baldwin
Burrows Briggs Storey Pugh Wade Hyde Dale Fraser Hargreaves Lees Forster""".split()
FAMILIAR = {
    "William": ["Will", "Billy", "Bill"], "Thomas": ["Tom", "Tommy"],
    "Alexander": ["Alex"], "Benjamin": ["Ben", "Benny"],
    "Joshua": ["Josh"], "Samuel": ["Sam", "Sammy"], "Daniel": ["Danny", "Dan"],
    "Frederick": ["Freddie", "Fred"], "James": ["Jamie", "Jim"],
    "Matthew": ["Matt"], "Nicholas": ["Nick"], "Jonathan": ["Jon"],
    "Christopher": ["Chris"], "Richard": ["Rich", "Ricky"],
    "Robert": ["Rob", "Bobby"], "Michael": ["Mike", "Mick"],
    "Edward": ["Eddie", "Ed", "Ted"], "Alfred": ["Alfie", "Alf"],
    "Charles": ["Charlie"], "Andrew": ["Andy", "Drew"], "Peter": ["Pete"],
    "Stephen": ["Steve"], "Anthony": ["Tony"], "Philip": ["Phil"],
    "Katherine": ["Katie", "Kate"], "Rebecca": ["Becky", "Becca"],
    "Abigail": ["Abbie", "Abby"], "Victoria": ["Vicky", "Tori"],
    "Jennifer": ["Jenny", "Jen"], "Jessica": ["Jess"],
    "Elizabeth": ["Beth", "Lizzie", "Libby"], "Margaret": ["Maggie"],
    "Susan": ["Sue"], "Amanda": ["Mandy"], "Nicola": ["Nicky", "Nikki"],
    "Patricia": ["Trish"], "Charlotte": ["Lottie"], "Matilda": ["Tilly"],
    "Sophia": ["Sophie"],
}
KEYS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
DISTRICTS = [1, 10, 19, 23, 24, 26, 30, 31, 32, 41, 42, 43, 51, 60, 61, 62]
INWARD = "ABDEFGHJLNPQRSTUWXYZ"


def zipf_pick(rng, items, s=1.0):
    """An item, the first ones commoner (weights 1/rank^s)."""
    weights = [1.0 / (i + 1) ** s for i in range(len(items))]
    return rng.choices(items, weights)[0]


def nhs_number(rng, used):
    while True:
        d = [rng.randrange(10) for _ in range(9)]
        c = 11 - sum(x * (10 - i) for i, x in enumerate(d)) % 11
        c = 0 if c == 11 else c
        if c == 10:
            continue
        n = "".join(map(str, d)) + str(c)
        if n not in used:
            used.add(n)
            return n


UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def upn(rng, used, school, year):
    while True:
        body = "816" + school + "%02d" % (year % 100) + "%03d" % rng.randrange(1000)
        s = sum(int(ch) * (i + 2) for i, ch in enumerate(body))
        u = UPN_LETTERS[s % 23] + body
        if u not in used:
            used.add(u)
            return u


def postcode(rng):
    return "YO%d %d%s%s" % (rng.choice(DISTRICTS), rng.randrange(10),
                            rng.choice(INWARD), rng.choice(INWARD))


def slip(rng, word):
    """One typing slip: a neighbouring key, a letter dropped, doubled, or
    two letters swapped."""
    if len(word) < 3:
        return word
    i = rng.randrange(1, len(word))
    kind = rng.randrange(4)
    low = word.lower()
    if kind == 0:
        for row in KEYS:
            j = row.find(low[i])
            if j >= 0:
                near = row[max(0, j - 1):j] + row[j + 1:j + 2]
                if near:
                    return word[:i] + rng.choice(near) + word[i + 1:]
        return word[:i] + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    if i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i - 1] + word[i] + word[i - 1]


def shift_date(rng, d, base):
    """One part of the date wrong: the day, the month or the year."""
    for _ in range(20):
        part = rng.randrange(3)
        try:
            if part == 0:
                n = d.replace(day=rng.choice([x for x in range(1, 29) if x != d.day]))
            elif part == 1:
                n = d.replace(month=rng.choice([x for x in range(1, 13) if x != d.month]))
            else:
                n = d.replace(year=d.year + rng.choice([-1, 1]))
        except ValueError:
            continue
        if n <= base:
            return n
    return d


def swap_day_month(d):
    try:
        return d.replace(month=d.day, day=d.month) if d.day <= 12 and d.day != d.month else None
    except ValueError:
        return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    total = int(sys.argv[1])
    out = sys.argv[2]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 17
    rng = random.Random(seed)
    base = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=2)
    os.makedirs(out, exist_ok=True)
    nhs_used, upn_used = set(), set()
    schools = ["%04d" % (2000 + i * 7) for i in range(60)]
    children = []
    households = []
    count = {"children": 0, "twins": 0, "households": 0}
    while len(children) < total:
        hh = {"surname": zipf_pick(rng, SURNAMES, 0.7), "postcode": postcode(rng),
              "uprn": "10%010d" % rng.randrange(10 ** 10),
              "old_postcode": postcode(rng), "school": rng.choice(schools),
              "members": []}
        households.append(hh)
        kids = rng.choices([1, 2, 3, 4], [40, 38, 16, 6])[0]
        born = base - datetime.timedelta(days=rng.randrange(18 * 365))
        k = 0
        while k < kids and len(children) < total:
            twins = rng.random() < 1 / 65 and len(children) + 2 <= total
            for t in range(2 if twins else 1):
                sex = rng.choice("FM")
                names = GIRLS if sex == "F" else BOYS
                given = zipf_pick(rng, names, 0.6)
                if t == 1:
                    while given == children[-1]["given"]:
                        given = zipf_pick(rng, names, 0.6)
                    count["twins"] += 2
                    children[-1]["twin"] = len(children)
                c = {"truth": len(children), "given": given,
                     "middle": zipf_pick(rng, GIRLS if sex == "F" else BOYS, 0.6)
                     if rng.random() < 0.2 else "",
                     "family": hh["surname"] if rng.random() < 0.9 or twins
                     else zipf_pick(rng, SURNAMES, 0.7),
                     "dob": born, "sex": sex, "hh": hh,
                     "nhs": nhs_number(rng, nhs_used)}
                if twins and t == 1:
                    c["family"] = children[-1]["family"]
                    c["twin"] = len(children) - 1
                age = (base - born).days // 365
                c["upn"] = upn(rng, upn_used, hh["school"], born.year + 4) \
                    if 4 <= age <= 16 else ""
                children.append(c)
                hh["members"].append(c)
            k += 2 if twins else 1
            born = born - datetime.timedelta(days=380 + rng.randrange(1500))
            if born < base - datetime.timedelta(days=18 * 365):
                break
    count["children"] = len(children)
    count["households"] = len(households)
    errors = {}

    def err(agency, kind):
        errors.setdefault(agency, {}).setdefault(kind, 0)
        errors[agency][kind] += 1

    def record(agency, c, p):
        """c as agency holds it, with the errors p gives each kind."""
        given = c["given"]
        family = c["family"]
        r = {"truth": c["truth"]}
        if "twin" in c:
            r["twin"] = c["twin"]
        if rng.random() < p.get("familiar", 0) and given in FAMILIAR:
            given = rng.choice(FAMILIAR[given])
            err(agency, "familiar given name")
        if rng.random() < p.get("slip", 0):
            if rng.random() < 0.5:
                given = slip(rng, given)
                err(agency, "slip in the given name")
            else:
                family = slip(rng, family)
                err(agency, "slip in the family name")
        other = []
        if rng.random() < p.get("hyphen", 0):
            family = family + "-" + zipf_pick(rng, SURNAMES, 0.7)
            err(agency, "hyphenated family name")
        if rng.random() < p.get("previous", 0):
            other = [family]
            family = zipf_pick(rng, SURNAMES, 0.7)
            err(agency, "a new family name, the old one as another name")
        if rng.random() < p.get("renamed", 0):
            family = zipf_pick(rng, SURNAMES, 0.7)
            err(agency, "a new family name only")
        if rng.random() < p.get("swap_names", 0):
            given, family = family, given
            err(agency, "names the wrong way round")
        r["given_name"] = given + (" " + c["middle"] if c["middle"] and
                                   rng.random() < p.get("middle", 1) else "")
        r["family_name"] = family
        if other:
            r["other_names"] = other
        d = c["dob"]
        x = rng.random()
        if x < p.get("dob_missing", 0):
            d = None
            err(agency, "date of birth missing")
        elif x < p.get("dob_missing", 0) + p.get("dob_swap", 0) and swap_day_month(d):
            d = swap_day_month(d)
            err(agency, "day and month swapped")
        elif x < p.get("dob_missing", 0) + p.get("dob_swap", 0) + p.get("dob_wrong", 0):
            d = shift_date(rng, d, base)
            err(agency, "one part of the date wrong")
        if d is not None:
            r["date_of_birth"] = d.isoformat()
        if rng.random() >= p.get("sex_missing", 0):
            r["sex"] = {"F": "female", "M": "male"}[c["sex"]]
        x = rng.random()
        if x < p.get("postcode_missing", 0):
            err(agency, "postcode missing")
        elif x < p.get("postcode_missing", 0) + p.get("moved", 0):
            r["postcode"] = c["hh"]["old_postcode"]
            err(agency, "an old address")
        else:
            r["postcode"] = c["hh"]["postcode"]
            if rng.random() < p.get("uprn", 0):
                r["uprn"] = c["hh"]["uprn"]
        return r

    extracts = {"health": [], "school": [], "police": [], "housing": []}
    for c in children:
        r = record("health", c, {"slip": 0.01, "moved": 0.04, "uprn": 0.9})
        r["nhs_number"] = c["nhs"]
        extracts["health"].append(r)
        if c["upn"]:
            r = record("school", c, {"slip": 0.02, "familiar": 0.03,
                                     "hyphen": 0.02, "moved": 0.05,
                                     "uprn": 0.3, "middle": 0.8})
            r["upn"] = c["upn"]
            r["local_id"] = "ADM-%06d" % c["truth"]
            if rng.random() < 0.2:
                r["nhs_number"] = c["nhs"]
            extracts["school"].append(r)
        if rng.random() < 0.1:
            r = record("police", c, {"slip": 0.05, "familiar": 0.1,
                                     "swap_names": 0.01, "previous": 0.03,
                                     "renamed": 0.01, "dob_missing": 0.02,
                                     "dob_swap": 0.02, "dob_wrong": 0.03,
                                     "sex_missing": 0.3, "postcode_missing": 0.05,
                                     "moved": 0.1, "middle": 0.2})
            r["local_id"] = "NYP-%07d" % (c["truth"] * 7 + 3)
            extracts["police"].append(r)
    for hi, hh in enumerate(households):
        if rng.random() < 0.3:
            for ci, c in enumerate(hh["members"]):
                r = record("housing", c, {"slip": 0.03, "dob_missing": 0.05,
                                          "dob_wrong": 0.02, "sex_missing": 0.5,
                                          "uprn": 1.0, "middle": 0.0})
                r["postcode"] = hh["postcode"]
                r["uprn"] = hh["uprn"]
                r["local_id"] = "TEN-%06d/%d" % (hi, ci + 1)
                extracts["housing"].append(r)
    for name, rows in extracts.items():
        with open(os.path.join(out, name + ".jsonl"), "w") as f:
            for r in rows:
                f.write(json.dumps(r, separators=(",", ":")) + "\n")
        count[name] = len(rows)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"counts": count, "errors": errors, "seed": seed}, f,
                  indent=1, sort_keys=True)
    print(json.dumps(count))


if __name__ == "__main__":
    main()
