"""The shop's catalog and its shopping tasks, generated from seeds (no data files).

:func:`generate_catalog` builds a deterministic catalog (default 1,200 products
across the 16 product types of :data:`PRODUCT_TYPES`, in 5 categories). Each
:class:`Product` has an ASIN-like id, a title, a type, a category, 2–4
attributes (``"natural looking"``, ``"gluten free"`` …), selectable options per
option type (``color``, ``size``, ``length`` …), a price, a description, feature
bullets and reviews.

:func:`make_goal` turns a task seed into a :class:`Goal` the way WebShop's
instructions are built (Yao et al., 2022): pick a target product, keep 1–3 of
its attributes, one value of each of its option types, and a price bound above
its price, then phrase it: ``"i need a hair extension which is natural looking,
with length: 18 inch, and price lower than 40.00 dollars"``. The target is one
product that satisfies the goal; others may satisfy it too, and the reward
(:mod:`envs.web.webshop.reward`) judges the bought product, not its identity.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ProductType", "Product", "Goal", "PRODUCT_TYPES", "OPTION_VALUES", "Catalog", "generate_catalog",
           "make_goal", "normalize_query"]


@dataclass(frozen=True)
class ProductType:
    """A kind of product: its name (the search noun), category, attribute pool, option types and price range."""

    name: str
    category: str
    attributes: tuple[str, ...]
    option_types: tuple[str, ...]
    price_range: tuple[float, float]
    title_words: tuple[str, ...]  #: style words that may open a title


#: Values of every option type. Option types of one product never share a value,
#: so ``click[black]`` names one button on an item page.
OPTION_VALUES: dict[str, tuple[str, ...]] = {
    "color": ("black", "white", "navy blue", "red", "beige", "grey", "pink", "green", "brown", "purple"),
    "size": ("x-small", "small", "medium", "large", "x-large", "xx-large"),
    "length": ("12 inch", "14 inch", "16 inch", "18 inch", "20 inch", "22 inch", "24 inch"),
    "shoe size": ("us 6", "us 7", "us 8", "us 9", "us 10", "us 11", "us 12"),
    "flavor": ("vanilla", "chocolate", "peanut butter", "mint", "berry", "caramel", "lemon"),
    "scent": ("citrus", "lavender", "unscented", "fresh rain", "sandalwood", "coconut"),
    "pack": ("pack of 1", "pack of 2", "pack of 3", "pack of 6", "pack of 12"),
    "capacity": ("12 oz", "16 oz", "20 oz", "32 oz", "40 oz"),
    "bed size": ("twin", "full", "queen", "king", "california king"),
    "model": ("iphone 13", "iphone 14", "iphone 15", "galaxy s22", "galaxy s23", "pixel 7", "pixel 8"),
    "shade": ("nude", "ruby", "coral", "berry wine", "mauve", "classic red"),
    "roast": ("light roast", "medium roast", "dark roast", "espresso roast"),
}

_SHARED = ("high quality", "easy to use", "long lasting")

PRODUCT_TYPES: tuple[ProductType, ...] = (
    # beauty & personal care
    ProductType("hair extension", "beauty", ("natural looking", "clip in", "heat resistant", "easy to apply",
                "human hair", "high quality"), ("color", "length"), (15, 80), ("Luxury", "Silky", "Thick", "Straight")),
    ProductType("shampoo", "beauty", ("sulfate free", "paraben free", "for dry hair", "natural ingredients",
                "long lasting", "cruelty free"), ("scent", "pack"), (6, 35), ("Moisturizing", "Clarifying", "Herbal")),
    ProductType("deodorant", "beauty", ("aluminum free", "long lasting", "sensitive skin", "natural ingredients",
                "cruelty free", "easy to use"), ("scent", "pack"), (5, 25), ("Fresh", "Clinical", "Natural")),
    ProductType("lipstick", "beauty", ("long lasting", "matte finish", "moisturizing", "cruelty free",
                "paraben free", "high quality"), ("shade",), (6, 40), ("Velvet", "Matte", "Glossy")),
    # clothing
    ProductType("t-shirt", "clothing", ("machine washable", "cotton", "slim fit", "short sleeve", "moisture wicking",
                "relaxed fit"), ("color", "size"), (8, 40), ("Classic", "Crew Neck", "Vintage", "Everyday")),
    ProductType("running shoes", "clothing", ("lightweight", "non slip", "breathable", "arch support",
                "rubber sole", "long lasting"), ("color", "shoe size"), (30, 150), ("Trail", "Road", "Cushioned")),
    ProductType("winter jacket", "clothing", ("water resistant", "hooded", "machine washable", "lightweight",
                "zip closure", "fleece lined"), ("color", "size"), (40, 220), ("Puffer", "Quilted", "Insulated")),
    # electronics
    ProductType("wireless headphones", "electronics", ("noise cancelling", "long battery life", "bluetooth",
                "fast charging", "lightweight", "high quality"), ("color",), (20, 300),
                ("Over Ear", "On Ear", "Studio")),
    ProductType("phone case", "electronics", ("shockproof", "slim fit", "wireless charging compatible",
                "easy to install", "high quality", "scratch resistant"), ("color", "model"), (7, 45),
                ("Clear", "Rugged", "Silicone")),
    ProductType("hair dryer", "electronics", ("fast drying", "ionic", "lightweight", "low noise",
                "easy to use", "long lasting"), ("color",), (18, 160), ("Professional", "Travel", "Compact")),
    # home & kitchen
    ProductType("bed sheets", "home", ("deep pocket", "machine washable", "wrinkle free", "cotton",
                "breathable", "easy to clean"), ("color", "bed size"), (20, 120), ("Soft", "Cooling", "Percale")),
    ProductType("throw pillow cover", "home", ("machine washable", "hidden zipper", "easy to clean",
                "decorative", "high quality", "cotton"), ("color", "pack"), (8, 40), ("Boho", "Velvet", "Farmhouse")),
    ProductType("coffee mug", "home", ("dishwasher safe", "microwave safe", "easy to clean", "bpa free",
                "insulated", "long lasting"), ("color", "capacity"), (8, 45), ("Ceramic", "Travel", "Stoneware")),
    ProductType("water bottle", "home", ("bpa free", "insulated", "leak proof", "dishwasher safe",
                "easy to clean", "lightweight"), ("color", "capacity"), (10, 50), ("Stainless", "Sports", "Vacuum")),
    # grocery
    ProductType("coffee beans", "grocery", ("organic", "fair trade", "whole bean", "gluten free",
                "non gmo", "low acid"), ("roast", "pack"), (8, 45), ("Single Origin", "House Blend", "Mountain")),
    ProductType("protein bars", "grocery", ("gluten free", "low sugar", "high protein", "keto friendly",
                "non gmo", "plant based"), ("flavor", "pack"), (10, 50), ("Chewy", "Crunchy", "Baked")),
)

_BRANDS = ("Luxora", "Nordwell", "Brightly", "Cascade", "Everpine", "Solvane", "Kinfolk", "Quartzy", "Ambry",
           "Tidewater", "Orchard & Co", "Vellum", "Halcyon", "Marlow", "Pebblestone", "Zephyra", "Corvid", "Lumen")
_REVIEW_LINES = ("Exactly as described.", "Good value for the price.", "Arrived quickly and works well.",
                 "Not bad, but the color is slightly off.", "Would buy again.", "Better than I expected.",
                 "A bit smaller than pictured.", "My second one, still happy.")
_ASIN_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_TEMPLATES = ("i need a {type}{atts}{opts}, and price lower than {price} dollars",
              "i am looking for a {type}{atts}{opts}, and price lower than {price} dollars",
              "i want to buy a {type}{atts}{opts}, and price lower than {price} dollars",
              "find me a {type}{atts}{opts}, and price lower than {price} dollars")


@dataclass(frozen=True)
class Product:
    """One catalog item. ``options`` maps option type → the values this item offers."""

    asin: str
    title: str
    type: str
    category: str
    attributes: tuple[str, ...]
    options: dict[str, tuple[str, ...]]
    price: float
    rating: float
    description: str
    features: tuple[str, ...]
    reviews: tuple[str, ...]

    def search_text(self) -> str:
        """Everything the search engine indexes besides the title."""
        values = " ".join(v for vs in self.options.values() for v in vs)
        return " ".join([self.type, *self.attributes, self.description, *self.features, values])


@dataclass(frozen=True)
class Goal:
    """A shopping instruction and what the reward checks.

    Attributes:
        instruction: the text the agent reads (``info["task"]``).
        type: the wanted product type; ``category`` its category.
        attributes: 1–3 wanted attributes (U_att); ``options``: option type → wanted value (U_opt).
        price_upper: the price bound (u_price).
        target_asin: the product the goal was made from (it satisfies the goal).
        query: the search query the expert types.
    """

    instruction: str
    type: str
    category: str
    attributes: tuple[str, ...]
    options: dict[str, str]
    price_upper: float
    target_asin: str
    query: str = field(default="")


@dataclass
class Catalog:
    """All products, by ASIN and in generation order."""

    products: list[Product]
    by_asin: dict[str, Product] = field(init=False)

    def __post_init__(self):
        self.by_asin = {p.asin: p for p in self.products}

    def __len__(self) -> int:
        return len(self.products)


def _asin(rng: np.random.Generator, taken: set[str]) -> str:
    while True:
        asin = "B0" + "".join(_ASIN_CHARS[i] for i in rng.integers(len(_ASIN_CHARS), size=8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _product(rng: np.random.Generator, ptype: ProductType, asin: str) -> Product:
    k = int(rng.integers(2, 5))
    attributes = tuple(sorted(rng.choice(ptype.attributes, size=k, replace=False).tolist(),
                              key=ptype.attributes.index))
    options = {}
    for otype in ptype.option_types:
        values = OPTION_VALUES[otype]
        n = int(rng.integers(2, min(6, len(values)) + 1))
        picked = rng.choice(len(values), size=n, replace=False)
        options[otype] = tuple(values[i] for i in sorted(picked))
    lo, hi = ptype.price_range
    price = round(math.floor(float(rng.uniform(lo, hi))) + 0.99, 2)
    brand = _BRANDS[int(rng.integers(len(_BRANDS)))]
    style = ptype.title_words[int(rng.integers(len(ptype.title_words)))]
    shown = [a.title() for a in attributes if rng.random() < 0.5]
    title = f"{brand} {style} {ptype.name.title()}" + (f", {', '.join(shown)}" if shown else "")
    if rng.random() < 0.4:
        first_opt = ptype.option_types[0]
        title += f" - Available in {len(options[first_opt])} {first_opt.title()}s"
    description = (f"This {ptype.name} by {brand} is {', '.join(attributes[:-1])}"
                   f"{' and ' if len(attributes) > 1 else ''}{attributes[-1]}. "
                   f"A {style.lower()} choice for everyday use, backed by our satisfaction promise.")
    features = tuple(f"{a.capitalize()}: designed to be {a} from day one." for a in attributes) + (
        f"Options: {'; '.join(f'{ot}: {len(vs)} choices' for ot, vs in options.items())}.",)
    n_reviews = int(rng.integers(1, 4))
    reviews = tuple(f"{int(rng.integers(3, 6))} stars: {_REVIEW_LINES[int(rng.integers(len(_REVIEW_LINES)))]}"
                    for _ in range(n_reviews))
    rating = round(float(rng.uniform(3.0, 5.0)), 1)
    return Product(asin, title, ptype.name, ptype.category, attributes, options, price, rating,
                   description, features, reviews)


@functools.lru_cache(maxsize=4)
def generate_catalog(num_products: int = 1200, seed: int = 0) -> Catalog:
    """The deterministic catalog: ``num_products`` products spread evenly over :data:`PRODUCT_TYPES`.

    The same ``(num_products, seed)`` always gives the same catalog (cached per process).
    """
    if num_products < len(PRODUCT_TYPES):
        raise ValueError(f"num_products={num_products} must be >= {len(PRODUCT_TYPES)} (one per product type)")
    rng = np.random.default_rng([seed, 7_771])
    taken: set[str] = set()
    products = [_product(rng, PRODUCT_TYPES[i % len(PRODUCT_TYPES)], _asin(rng, taken)) for i in range(num_products)]
    return Catalog(products)


def normalize_query(text: str) -> str:
    """Lower-case, whitespace-collapsed query text: the form used in URLs and anchors."""
    return " ".join(text.lower().split())


def make_goal(catalog: Catalog, task_seed: int) -> Goal:
    """The shopping goal of ``task_seed``: a target product, 1–3 of its attributes, its options, a price bound."""
    rng = np.random.default_rng([task_seed, 4_242])
    product = catalog.products[int(rng.integers(len(catalog)))]
    k = int(rng.integers(1, min(3, len(product.attributes)) + 1))
    attributes = tuple(rng.choice(product.attributes, size=k, replace=False).tolist())
    options = {ot: vs[int(rng.integers(len(vs)))] for ot, vs in product.options.items()}
    if len(options) > 1 and rng.random() < 0.3:  # sometimes only one option is asked for
        drop = list(options)[int(rng.integers(len(options)))]
        options.pop(drop)
    price_upper = float(math.ceil(product.price * float(rng.uniform(1.05, 1.6)) / 10.0) * 10)
    atts_text = " which is " + " and ".join(attributes) if rng.random() < 0.5 else " that is " + ", ".join(attributes)
    opts_text = "".join(f", with {ot}: {v}" if i == 0 else f" and {ot}: {v}"
                        for i, (ot, v) in enumerate(options.items()))
    template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    instruction = template.format(type=product.type, atts=atts_text, opts=opts_text, price=f"{price_upper:.2f}")
    query = normalize_query(" ".join([*attributes, product.type]))
    return Goal(instruction, product.type, product.category, attributes, options, price_upper, product.asin, query)
