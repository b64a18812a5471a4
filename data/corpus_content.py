"""Static content for the Juniper Outfitters sample corpus.

This module holds *what* the fictional company says: the help-center articles
(the single source of truth for every policy number), the product catalogue and
the per-topic phrase banks that ``generate_corpus.py`` composes into
conversations.  It contains no randomness and no I/O.

Conventions used in the phrase banks
------------------------------------
* ``{order}``, ``{product}``, ``{size}``, ``{other_size}``, ``{other_product}``,
  ``{kind}``, ``{kinds}``, ``{promo}``, ``{competitor}``, ``{eu_country}``,
  ``{ca_city}``, ``{us_state}``, ``{days}``, ``{weekday}`` are filled in by the
  generator.
* A ``Variants`` value is either a tuple of alternatives, or a dict keyed by
  product kind (``"jacket"``, ``"boots"``, ...) where ``"*"`` means "any kind".
* Agent texts may only state numbers that appear in the facts of the article
  they cite; ``generate_corpus.validate_content()`` enforces this.
"""

# This module is prose: phrase banks and policy texts read better unwrapped.
# ruff: noqa: E501

from __future__ import annotations

import re
from dataclasses import dataclass, field

HELP_BASE = "https://help.juniperoutfitters.example/articles"
SHOP = "https://www.juniperoutfitters.example"

Variants = tuple[str, ...] | dict[str, tuple[str, ...]]


# --------------------------------------------------------------------------
# Help-center articles: the policy sheet
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Article:
    code: str
    slug: str
    title: str
    facts: tuple[str, ...]

    @property
    def url(self) -> str:
        return f"{HELP_BASE}/{self.slug}"


_ARTICLE_LIST: tuple[Article, ...] = (
    Article("KB-ORD-01", "track-your-order", "Tracking your order", (
        "Shipping confirmation email with a tracking link is sent when the order leaves the warehouse",
        f"Track any order at {SHOP}/track",
        "New tracking numbers can take up to 24 hours to show the first carrier scan",
        "Orders placed before 2 pm ET on a business day ship the same day; the warehouse ships Monday to Friday",
        "US standard delivery takes 3-5 business days after shipping",
    )),
    Article("KB-ORD-02", "late-or-lost-packages", "Late, lost or 'delivered but not received' packages", (
        "No tracking movement for 5 business days, or more than 5 business days past the estimated delivery date: we open a carrier trace",
        "Carrier traces usually take up to 3 business days",
        "If the trace does not find the parcel: free reship or full refund, customer's choice",
        "'Delivered' scans can happen up to 48 hours before the real drop-off; after 48 hours we open a claim",
        "Replacement shipments for lost parcels go out by express (1-2 business days), free of charge",
        "Late express orders: the $14.95 express fee is refunded",
    )),
    Article("KB-ORD-03", "wrong-or-missing-items", "Wrong or missing items", (
        "Report wrong or missing items within 14 days of delivery, with a photo of the item and packing slip",
        "Correct or missing item ships free by express (1-2 business days); no need to wait for the return",
        "Prepaid return label for the wrong item is emailed within 1 business day",
        "Items from a second warehouse are marked 'ships separately' in the shipping confirmation, with their own tracking",
        "Tracking for a separate parcel can take up to 24 hours to show the first scan",
        "Refund instead of replacement: to the original payment method within 5-7 business days",
    )),
    Article("KB-ORD-04", "cancel-an-order", "Cancelling an order", (
        "Orders can be cancelled only before they are packed, usually within 1 hour of ordering",
        "Use the 'Cancel order' button on the order page",
        "Cards are charged only when the order is packed; a cancelled order leaves a pending authorization the bank releases within 3-5 business days",
        "Packed orders cannot be cancelled: return them under the returns policy instead",
        "Items on an order cannot be edited; cancel before packing and re-order instead",
    )),
    Article("KB-ORD-05", "change-shipping-address", "Changing a shipping address", (
        "The address can be changed only before the order is packed, usually within 1 hour of ordering",
        "After shipping, US customers can ask the carrier to redirect or hold the parcel with the tracking number (the carrier may charge a fee)",
        "The destination country of an existing order cannot be changed",
        "Undeliverable parcels return to the warehouse and are refunded within 5-7 business days after they arrive",
    )),
    Article("KB-RET-01", "returns-policy", "Returns policy", (
        "Unused items with original tags: 30 days from delivery, 60 days for Juniper Trail Club members",
        "Trying items on indoors is fine; items marked 'Final sale' cannot be returned",
        "Prepaid US return label costs $6.95, deducted from the refund; free for defective or wrong items",
        "Prepaid return label from Canada or the EU costs $14.95 (free for defective or wrong items)",
        "Customers may also ship the return themselves",
    )),
    Article("KB-RET-02", "start-a-return", "How to start a return", (
        f"Start every return or exchange at {SHOP}/returns",
        "Choose the items, the reason and 'Refund' or 'Exchange', then print the label",
        "Any sturdy box or bag works; original packaging is not needed",
        "Returns can also be dropped off at the Portland flagship store (418 Alder Lane) with no label fee",
    )),
    Article("KB-RET-03", "damaged-or-defective-items", "Items that arrive damaged", (
        "Report shipping damage within 14 days of delivery with photos of the item and the box",
        "Free return label; choose a replacement or a full refund",
        "The replacement ships as soon as the return label is created",
        "Defects that appear after use are covered by the 2-year warranty (KB-WAR-01)",
    )),
    Article("KB-RET-04", "exchanges", "Exchanging for another size or color", (
        f"Start at {SHOP}/returns and choose 'Exchange' (same item, different size or color)",
        "The replacement ships free as soon as the return gets its first carrier scan",
        "The $6.95 return label fee applies unless the item is defective",
        "Same window as returns: 30 days, 60 days for Juniper Trail Club members",
        "If the new size is out of stock the item is refunded within 5-7 business days after the warehouse receives it",
        "For a different product: return it and place a new order",
    )),
    Article("KB-REF-01", "refund-timelines", "When will I get my refund?", (
        "Refunds go to the original payment method within 5-7 business days after the warehouse receives the item",
        "An email is sent when the refund is processed",
        "Gift card payments are refunded to the gift card",
        "Original shipping is refunded only for defective or wrong items",
        "The $6.95 label fee is deducted for regular returns using the prepaid label",
        "Refunds to a closed card are forwarded by the bank to the new card or account",
    )),
    Article("KB-PAY-01", "payment-methods-and-declines", "Payment methods and declined payments", (
        "Accepted: Visa, Mastercard, American Express, Discover, PayPal, Apple Pay, Google Pay, Juniper gift cards",
        "No buy-now-pay-later options",
        "Common decline causes: billing address or ZIP/postal code mismatch, bank fraud filter, expired card or wrong security code",
        "Failed attempts may show as pending authorizations, released by the bank within 3-5 business days; they are not charges",
        "Staff never take card details by phone, chat or email",
    )),
    Article("KB-PRO-01", "promo-codes", "Promo codes", (
        "One promo code per order, entered in the 'Promo code' box at checkout",
        "Codes do not apply to gift cards or items marked 'Final sale'",
        "Each code has an expiry date; expired codes cannot be reactivated",
        "Codes cannot be added after an order is placed",
        "Welcome code: 10% off the first full-price order, valid 30 days after newsletter sign-up, tied to the sign-up email",
    )),
    Article("KB-PRC-01", "price-match", "Price match", (
        "Within 14 days of purchase",
        "Our own price drops: the difference is refunded",
        "Competitors: identical item (model, color, size), in stock, at an authorized retailer in the US, Canada or EU",
        "Excluded: marketplace sellers, clearance, bundles, flash sales, membership-only prices",
        "The difference goes to the original payment method within 5-7 business days",
    )),
    Article("KB-GFT-01", "gift-cards", "Gift cards", (
        "Gift cards never expire and have no fees",
        f"Check the balance at {SHOP}/giftcard",
        "Up to 5 gift cards per order; pay the rest with another method",
        "E-gift cards arrive by email within 15 minutes (check spam); we can resend them",
        "Lost physical cards are replaced with the card number or purchase receipt",
        "Not redeemable for cash except where the law requires it",
    )),
    Article("KB-WAR-01", "warranty", "Our 2-year warranty", (
        "2-year warranty on all gear from the date of delivery",
        "Covers manufacturing defects: seams, zippers, buckles, delamination, sole separation",
        "Not covered: normal wear and tear, accidents, misuse",
        f"Claim at {SHOP}/warranty with the order number (or receipt) and photos",
        "Claims reviewed within 3 business days; repair, replacement or refund; free shipping both ways for approved claims",
    )),
    Article("KB-REP-01", "repair-service", "Repair service", (
        "Paid repairs for damage not covered by the warranty",
        "Zipper replacement from $25, seam re-taping from $35, patches from $10, tent pole sections $15",
        "Free quote before any work; turnaround 2-3 weeks after arrival",
        f"Send items in via {SHOP}/repairs; customer pays shipping to us, return shipping is free",
    )),
    Article("KB-CARE-01", "waterproof-jacket-care", "Caring for waterproof jackets", (
        "Wash with a technical wash on a gentle cycle at 30 °C / 86 °F; no fabric softener or bleach",
        "Tumble dry on low for 20 minutes to reactivate the water-repellent (DWR) finish",
        "When water stops beading, apply a spray-on DWR treatment and tumble dry again",
    )),
    Article("KB-CARE-02", "tent-care", "Caring for your tent", (
        "Never machine wash or machine dry a tent",
        "Sponge clean with mild soap and lukewarm water",
        "Dry completely before storing to prevent mildew; store loosely in a cool, dry place",
        "Refresh the fly with a spray-on waterproofing when water stops beading; re-seal seams with seam sealer",
    )),
    Article("KB-CARE-03", "boot-care", "Caring for hiking boots", (
        "Brush off dirt, rinse with lukewarm water, take the insoles out",
        "Air dry at room temperature, away from heaters or direct heat",
        "Leather: re-wax with leather conditioner; fabric and GTX: spray-on waterproofing",
        "Never machine wash boots",
    )),
    Article("KB-SIZ-01", "size-charts", "Size charts and fit", (
        "Size chart on every product page under 'Size & fit'",
        "Jackets are regular fit, except the Stormline Rain Jacket (athletic fit)",
        "Between sizes or layering underneath: size up",
    )),
    Article("KB-SIZ-02", "boot-fit-guide", "Boot fit guide", (
        "Ridgeline Hiking Boots and Talus Mid GTX Boots run about half a size small: order half a size up",
        "Switchback Trail Runners are true to size",
        "Wide widths are marked 'W'",
        "Try boots on in the evening with hiking socks",
    )),
    Article("KB-STK-01", "back-in-stock-alerts", "Back-in-stock alerts", (
        "Use 'Notify me' on the product page (pick size and color) to get an email when it is back",
        "No exact restock dates; items cannot be reserved or held",
        "Online stock shown is all available stock; alerts are first come, first served",
    )),
    Article("KB-ACC-01", "password-reset", "Signing in and resetting your password", (
        "Use 'Forgot password?' on the sign-in page; the reset link is valid for 60 minutes",
        "Check spam and promotions folders; the email only goes to the account's email address",
        "After 5 failed sign-in attempts the account is locked for 30 minutes",
        "Staff cannot see or set passwords",
        "Guest checkouts have no account; create one with the same email to link past orders",
    )),
    Article("KB-PRV-01", "delete-your-data", "Deleting your account and data", (
        f"Request deletion or a copy of your data at {SHOP}/privacy-request",
        "Identity is verified by email; requests are completed within 30 days",
        "Order and tax records are kept for 7 years as required by law",
        "Loyalty points and Trail Club membership are forfeited; marketing emails stop right away",
    )),
    Article("KB-CLB-01", "juniper-trail-club", "Juniper Trail Club membership", (
        "$49 per year, renews automatically; reminder email 7 days before renewal",
        "Free standard shipping on every order (no minimum), 60-day returns instead of 30, 2 points per $1, early access to sales",
        "Cancel or turn off auto-renew any time in the account",
        "Full refund of the $49 fee if cancelled within 14 days with no benefits used",
        "Benefits start when you join; they do not apply to earlier orders",
    )),
    Article("KB-LOY-01", "loyalty-points", "Loyalty points", (
        "1 point per $1 spent (2 points per $1 for Juniper Trail Club members); no points on gift cards or shipping",
        "Points post 14 days after delivery; returned items deduct points",
        "100 points = $5 reward, redeemed in the 'Rewards' box at checkout",
        "Rewards combine with one promo code per order",
        "Points expire after 12 months without account activity",
    )),
    Article("KB-SHP-01", "shipping-options-and-costs", "Shipping options and costs (US)", (
        "Standard: 3-5 business days, $6.95, free on orders over $75 (after discounts, gift cards excluded)",
        "Express: 1-2 business days, $14.95",
        "Juniper Trail Club members: free standard shipping on every order",
        "Orders placed before 2 pm ET on business days ship the same day; the warehouse ships Monday to Friday",
        "Shipping speed cannot be changed after the order is packed",
    )),
    Article("KB-SHP-02", "restricted-items", "Fuel canisters and restricted items", (
        "Fuel canisters ship by standard ground only, within the contiguous US only",
        "No fuel to Alaska, Hawaii, PO boxes, Canada or the EU, and never by express",
        "Fuel ships separately by ground; the rest of the order can still go express",
        "Stoves themselves ship everywhere we deliver; fuel can be picked up at the Portland store",
    )),
    Article("KB-INT-01", "international-shipping", "Shipping to Canada and the EU", (
        "We ship to the US, Canada and the 27 EU countries",
        "Canada/EU standard: 6-10 business days, flat $19.95, free on orders over $200",
        "International express: 2-4 business days, $39.95",
        "Prices are shown and charged in USD",
    )),
    Article("KB-INT-02", "customs-duties-and-taxes", "Customs, duties and taxes", (
        "Duties and taxes (including VAT/GST) for Canada and the EU are calculated and charged at checkout",
        "Nothing more to pay on delivery; if a courier asks for fees, do not pay and contact us",
        "The destination country cannot be changed after checkout",
    )),
    Article("KB-PCK-01", "store-pickup", "Store pickup in Portland", (
        "Flagship store: 418 Alder Lane, Portland, OR; pickup is free",
        "'Ready for pickup' email usually within 4 hours during opening hours",
        "Orders are held for 7 days, then cancelled and refunded",
        "Bring the order number and photo ID; someone else can collect with the forwarded email and their own ID",
        "Hours: Mon-Sat 10 am to 7 pm, Sun 11 am to 5 pm; in-store returns have no label fee",
    )),
    Article("KB-INV-01", "invoices-and-receipts", "Invoices and receipts", (
        "Download a PDF invoice under Account > Orders > 'Download invoice'",
        "Guest orders: invoice link in the shipping confirmation email, or we email it",
        "EU business customers add company name and VAT ID at checkout",
        "Invoices can be reissued with a company name or VAT ID within 30 days of purchase",
    )),
    Article("KB-B2B-01", "bulk-and-business-orders", "Bulk and business orders", (
        "Bulk pricing from 10 units of the same item: 10% off 10-24 units, 15% off 25 or more",
        f"Request a quote at {SHOP}/business; quotes within 2 business days",
        "Approved business accounts can pay by invoice on net-30 terms",
        "No custom logos or embroidery",
    )),
    Article("KB-RNT-01", "gear-rental", "Gear rental", (
        "Rent tents, backpacks and sleeping bags (not stoves or footwear), US only",
        "Rentals last 3-14 days, from $35 for 3 days",
        "Delivered at least 1 day before the trip; prepaid return label included, ship back the day after the trip",
        "Cleaning included; damage beyond normal wear is billed at repair cost after a quote",
        "Rental fee credited if you buy the same item within 30 days",
    )),
    Article("KB-RCL-01", "emberline-2-stove-recall", "Recall RC-2025-07: Emberline 2 Stove", (
        "Recall RC-2025-07: Emberline 2 Stove with serial numbers starting EL2-25, sold March 1 - September 30, 2025",
        "The fuel valve may leak: stop using it immediately",
        "Free replacement (Emberline 2.1, not affected) or full refund, prepaid return label, no receipt needed",
        f"Register at {SHOP}/recall; the serial number is engraved on the underside of the stove's base",
    )),
    Article("KB-REV-01", "review-guidelines", "Product review guidelines", (
        "Reviews are checked within 72 hours",
        "Removed for profanity, personal information, links, or content not about the product (service feedback goes to support)",
        "Negative reviews are published too",
        "Edit or delete your own reviews under Account > My reviews; use 'Report' to flag a review",
    )),
    Article("KB-EML-01", "email-preferences", "Email preferences and unsubscribing", (
        "Unsubscribe link at the bottom of every marketing email, or Account > Email preferences",
        "Changes take effect within 48 hours",
        "Order and shipping emails are still sent",
        "A weekly digest is available instead of individual emails",
    )),
    Article("KB-PRE-01", "pre-orders", "Pre-orders", (
        "Estimated ship date on the product page and in the confirmation email",
        "Cards are charged only when the item is packed",
        "In-stock items on the same order ship first at no extra shipping cost",
        "Cancel any time before the item is packed ('Cancel order' button)",
        "If the date slips by more than 30 days we email you; you can cancel or keep waiting",
    )),
)

ARTICLES: dict[str, Article] = {a.code: a for a in _ARTICLE_LIST}

# Generic promise used when a case is escalated (not tied to one article).
ESCALATION = "within 1 business day"


# --------------------------------------------------------------------------
# Catalogue and other fill-in values
# --------------------------------------------------------------------------

PRODUCTS: dict[str, tuple[str, ...]] = {
    "tent": ("Cascade 2 Tent", "Ridgeback 3P Tent", "Summit Dome 4 Tent", "Larch UL1 Tent"),
    "jacket": ("Stormline Rain Jacket", "Alder Down Jacket", "Tamarack Softshell", "Drizzle Packable Shell"),
    "boots": ("Ridgeline Hiking Boots", "Talus Mid GTX Boots", "Switchback Trail Runners"),
    "backpack": ("Sawtooth 45 Backpack", "Basin 28 Daypack", "Traverse 65 Pack"),
    "stove": ("Kettle Peak Stove System", "Firefly Mini Stove", "Emberline 2.1 Stove"),
    "sleeping-bag": ("Larkspur 20 Sleeping Bag", "Nightjar Down Quilt"),
}
KIND_NOUN = {"tent": "tent", "jacket": "jacket", "boots": "boots", "backpack": "backpack",
             "stove": "stove", "sleeping-bag": "sleeping bag"}
KIND_PLURAL = {"tent": "tents", "jacket": "jackets", "boots": "pairs of boots", "backpack": "backpacks",
               "stove": "stoves", "sleeping-bag": "sleeping bags"}
ALL_KINDS: tuple[str, ...] = tuple(PRODUCTS)
SIZED_KINDS: tuple[str, ...] = ("jacket", "boots")
JACKET_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
BOOT_SIZES = ("7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "11.5", "12")

PROMO_CODES = ("TRAIL15", "SPRINGHIKE", "CAMP20", "WELCOME10", "SUMMIT25", "FREESHIP", "BASECAMP", "TRAILCLUB10")
COMPETITORS = ("Summit Supply Co.", "Trailhead Mercantile", "Northpass Outdoor", "Ridge & River")
EU_COUNTRIES = ("Germany", "France", "the Netherlands", "Spain", "Italy", "Ireland", "Austria", "Sweden", "Belgium")
CA_CITIES = ("Toronto", "Vancouver", "Calgary", "Montreal", "Ottawa", "Halifax")
US_STATES = ("Texas", "Colorado", "Florida", "Oregon", "New York", "Ohio", "Arizona", "Maine")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")

FIRST_NAMES = (
    "Maria", "James", "Aiko", "Liam", "Sofia", "Noah", "Fatima", "Ethan", "Chloe", "Mateo", "Grace",
    "Oliver", "Amara", "Lucas", "Isabella", "Ravi", "Hannah", "Kenji", "Zoe", "Daniel", "Lucia",
    "Owen", "Ingrid", "Samuel", "Nadia", "Tyler", "Emma", "Pierre", "Julia", "Marcus", "Leah",
    "Andrea", "Tom", "Priscilla", "Ahmed", "Claire", "Bjorn", "Megan", "Carlos", "Yuki",
)
LAST_NAMES = (
    "Kowalski", "Nguyen", "Smith", "Garcia", "Okafor", "Müller", "Johnson", "Rossi", "Tanaka", "Brown",
    "Dubois", "Patel", "Larsen", "Martin", "Silva", "O'Brien", "Fischer", "Kim", "Moreau", "Wilson",
    "Haddad", "Novak", "Jensen", "Lopez", "Schmidt", "Clarke", "Ivanova", "Bauer", "Murphy", "Costa",
)
AGENTS = ("Priya", "Diego", "Hannah", "Marcus", "Aisha", "Jonas", "Keiko", "Sam", "Lena", "Tomás")


# --------------------------------------------------------------------------
# Topic phrase banks
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUp:
    """A dependent customer question asked after the first agent answer."""

    customer: Variants           # how the customer asks it later in the conversation
    agent: Variants              # the answer (facts identical across variants)
    # Article cited with the answer: a code, a per-kind mapping, or None (no citation).
    article: str | dict[str, str] | None = None
    inline: tuple[str, ...] = ()  # how it reads when asked up front, in the first message


@dataclass(frozen=True)
class Topic:
    id: str
    articles: tuple[str, ...]
    situations: Variants
    asks: tuple[str, ...]
    answers: Variants
    followups: tuple[FollowUp, ...] = ()
    kinds: tuple[str, ...] = ALL_KINDS
    kind_articles: dict[str, str] = field(default_factory=dict)  # article to cite per product kind
    needs_order: bool = False    # agent asks for the order number if the customer didn't give it
    angry_rate: float = 0.08
    weight: float = 1.0
    problem: bool = False        # something went wrong: agents open with an apology more often


# Follow-ups shared by several topics -------------------------------------

FU_REFUND_TIMING = FollowUp(
    customer=(
        "ok and how long does the refund take once you get it back?",
        "And how long until I see the money back on my card?",
        "how long do refunds usually take?",
        "Great. When will the refund show up?",
        "ok. and the refund goes back to my card right? how long?",
    ),
    agent=(
        "Refunds go back to your original payment method within 5-7 business days after our warehouse receives the item, and we'll email you as soon as it's processed.",
        "Once our warehouse receives it, the refund is issued to your original payment method within 5-7 business days — you'll get a confirmation email when it's done.",
    ),
    article="KB-REF-01",
    inline=("Also, how long does the refund take?", "And how long do refunds take once you receive it?"),
)

FU_RETURN_LABEL_COST = FollowUp(
    customer=(
        "do I have to pay for the return shipping?",
        "Is the return label free?",
        "and who pays for shipping it back?",
        "Will you charge me for the return label?",
    ),
    agent=(
        "For a regular return our prepaid label costs $6.95, which is deducted from your refund — or you can ship it back yourself. If the item is defective or we sent the wrong one, the label is free.",
        "The prepaid US label is $6.95 and comes off your refund, unless the item is defective or wrong, in which case it's free. You're also welcome to send it back with a carrier of your choice.",
    ),
    article="KB-RET-01",
    inline=("Do I have to pay for return shipping?", "Also is the return label free?"),
)

FU_EXCHANGE = FollowUp(
    customer=(
        "and if it doesn't fit, can I swap it for another size?",
        "What if the size is wrong, can I exchange it?",
        "ok and if it's still not right can I exchange?",
    ),
    agent=(
        f"Yes — you can exchange it for another size or color at {SHOP}/returns within 30 days of delivery (60 days for Juniper Trail Club members). The replacement ships free as soon as your return gets its first carrier scan; the $6.95 label fee applies unless the item is defective.",
        f"Of course. Start an exchange at {SHOP}/returns within 30 days of delivery, or 60 days if you're a Juniper Trail Club member. We ship the new size free once the carrier scans your return, and the $6.95 label fee only applies if the item isn't defective.",
    ),
    article="KB-RET-04",
    inline=("And can I exchange it if the size is wrong?",),
)

FU_WARRANTY = FollowUp(
    customer=(
        "what if something breaks after I've used it for a while?",
        "and if it fails later on, is that covered?",
        "Does the warranty cover stuff like that?",
    ),
    agent=(
        f"That's covered by our 2-year warranty, which protects against manufacturing defects like failed seams, zippers or buckles from the date of delivery. You can file a claim at {SHOP}/warranty with your order number and a few photos.",
        f"Our 2-year warranty covers manufacturing defects (seams, zippers, buckles, delamination) from the date of delivery. Claims go through {SHOP}/warranty — just add your order number and photos.",
    ),
    article="KB-WAR-01",
    inline=("Is that covered by the warranty?",),
)

FU_REPLACEMENT_EXPRESS = FollowUp(
    customer=(
        "if you send a new one, can it come express?",
        "will the replacement be sent express? I need it soon",
        "How fast would a replacement get here?",
    ),
    agent=(
        "Yes, replacement shipments for lost parcels always go out by express shipping, which takes 1-2 business days, free of charge.",
        "Replacements for lost parcels ship by express at no cost, so it should arrive within 1-2 business days of shipping.",
    ),
    article="KB-ORD-02",
    inline=("And if you reship it, can it be express?",),
)

FU_PICKUP_STORE = FollowUp(
    customer=(
        "can I pick it up at your store instead?",
        "Is there a store where I can grab it?",
        "do you have a physical store?",
    ),
    agent=(
        "Yes! Our flagship store is at 418 Alder Lane, Portland, OR. Choose 'Pick up in store' at checkout — it's free, and you'll get a 'Ready for pickup' email, usually within 4 hours during opening hours.",
        "We do — our Portland flagship at 418 Alder Lane. Store pickup is free; select 'Pick up in store' at checkout and wait for the 'Ready for pickup' email, which usually comes within 4 hours during opening hours.",
    ),
    article="KB-PCK-01",
)


# The topics ---------------------------------------------------------------

TOPICS: tuple[Topic, ...] = (
    Topic(
        id="order-status",
        articles=("KB-ORD-01",),
        needs_order=True, weight=1.6, angry_rate=0.12,
        situations=(
            "I placed order {order} {days} days ago and haven't gotten a shipping email yet.",
            "I ordered the {product} on {weekday} and I'm trying to figure out where it is.",
            "My order {order} still says 'processing' on the website.",
            "I got an email that my order shipped but the tracking link doesn't show anything.",
            "I'm wondering about the status of my order {order}.",
            "I need my {product} for a trip on {weekday} and want to make sure it gets here in time.",
            "The tracking for my order hasn't updated since yesterday.",
            "I bought a {product} and have no idea if it's even been sent.",
            "Just checking in on my order — the {product}.",
        ),
        asks=(
            "Can you tell me where it is?", "Has it shipped yet?", "When will it arrive?", "How do I track it?",
            "Is there a way to see the tracking?", "Could you check on it for me please?", "What's going on with it?",
            "Any update?",
        ),
        answers=(
            f"I've looked into it. As soon as an order leaves our warehouse we email you a shipping confirmation with the tracking link, and you can follow it any time at {SHOP}/track. New tracking numbers can take up to 24 hours to show the first carrier scan, so a blank page right after shipping is normal. Orders placed before 2 pm ET on a business day ship the same day, and standard delivery then takes 3-5 business days.",
            f"Thanks for your patience! You'll get an email with your tracking link the moment the parcel leaves our warehouse — the same tracking is on {SHOP}/track. Please allow up to 24 hours after that email for the carrier to post the first scan. We ship orders placed before 2 pm ET the same business day; standard shipping takes 3-5 business days from there.",
            f"Here's how it works: orders placed before 2 pm ET on a business day leave our warehouse the same day, and standard delivery takes 3-5 business days after that. When it ships you get a confirmation email with a tracking link (also available at {SHOP}/track). It can take up to 24 hours for the first scan to appear, so don't worry if the tracking looks empty at first.",
        ),
        followups=(
            FollowUp(
                customer=("ok, and what if it's still not moving after a few days?",
                          "what happens if the tracking doesn't update at all?",
                          "And if it gets stuck somewhere?"),
                agent=("If tracking shows no movement for 5 business days, we open a trace with the carrier for you, and if the trace doesn't turn it up we reship or refund it at no cost.",
                       "If there's no tracking movement for 5 business days, let us know and we'll open a carrier trace. Should the carrier not find it, you get a free reship or a full refund."),
                article="KB-ORD-02",
                inline=("And what happens if it gets stuck?",),
            ),
            FollowUp(
                customer=("can I upgrade it to express?", "Is it possible to switch to express shipping?",
                          "can you make it go faster? I'd pay for express"),
                agent=("Once an order has been packed we can't change the shipping speed, unfortunately. For future orders, express shipping takes 1-2 business days and costs $14.95 (standard is 3-5 business days, free over $75).",
                       "I'm sorry, the shipping speed can't be changed after an order is packed. Next time you can pick express at checkout: 1-2 business days for $14.95, versus 3-5 business days for standard (free on orders over $75)."),
                article="KB-SHP-01",
                inline=("Can I still upgrade to express?",),
            ),
            FollowUp(
                customer=("do you ship on weekends?", "Does the warehouse ship on Saturdays?",
                          "what if I order on a sunday?"),
                agent=("Our warehouse ships Monday to Friday. Orders placed before 2 pm ET on a business day go out the same day; anything later ships the next business day.",
                       "We ship Monday to Friday only — an order placed before 2 pm ET on a business day leaves the same day, otherwise it goes out on the next business day."),
                article="KB-ORD-01",
            ),
        ),
    ),
    Topic(
        id="delayed-package",
        articles=("KB-ORD-02", "KB-ORD-01"),
        needs_order=True, weight=1.4, angry_rate=0.35, problem=True,
        situations=(
            "My order {order} was supposed to arrive {weekday} and it's still not here.",
            "The tracking for my package hasn't moved in {days} days.",
            "I paid for express shipping and my {product} is now {days} days late.",
            "Tracking has said 'in transit' since last week for my {product}.",
            "My package seems to be stuck at the carrier's facility.",
            "It's been almost two weeks and my {product} hasn't shown up.",
            "The estimated delivery date for {order} came and went.",
            "My {product} is stuck somewhere between your warehouse and my house.",
        ),
        asks=(
            "Where is it?", "What are you going to do about it?", "Can you find out what's happening?", "Is it lost?",
            "Can you send a new one?", "Should I keep waiting or can you do something?", "What are my options?",
        ),
        answers=(
            "I'm sorry your parcel is taking longer than expected. Once tracking shows no movement for 5 business days, or the parcel is more than 5 business days past its estimated delivery date, we open a trace with the carrier on your behalf. If the trace can't locate it, we'll reship your order or refund it in full — at no cost to you either way.",
            "Sorry for the wait! Here's how we handle late parcels: if there's been no tracking movement for 5 business days, or it's over 5 business days past the estimated delivery date, we open a carrier trace for you. If the carrier can't find it, you choose between a free reship or a full refund.",
            "I understand how annoying a late package is. Carriers do run behind sometimes; when a parcel shows no movement for 5 business days or is more than 5 business days late, we start a trace with them. If it's lost, we send a free replacement or give you a full refund — whichever you prefer.",
        ),
        followups=(
            FollowUp(
                customer=("ok so can you open the trace now? it's been more than a week",
                          "It's past that already. Can you start the trace?",
                          "well it's been way longer than that, so please open one"),
                agent=("Yes — since it's past that point, I've opened a trace with the carrier today. Traces usually take up to 3 business days, and I'll email you as soon as I hear back.",
                       "Absolutely, I've started the carrier trace now. They usually take up to 3 business days; we'll email you the result and set up the reship or refund right away if it's lost."),
                article="KB-ORD-02",
            ),
            FU_REPLACEMENT_EXPRESS,
            FollowUp(
                customer=("I paid for express, do I get that money back?", "and what about the express fee I paid??",
                          "Will you refund the express shipping at least?"),
                agent=("Yes — if an express order arrives late, we refund the $14.95 express shipping fee to your original payment method. I've noted that on your order.",
                       "You'll get the $14.95 express fee back, since the parcel missed the express window — it goes to your original payment method."),
                article="KB-ORD-02",
                inline=("And I want my express fee back.",),
            ),
        ),
    ),
    Topic(
        id="package-marked-delivered",
        articles=("KB-ORD-02",),
        needs_order=True, weight=1.0, angry_rate=0.3, problem=True,
        situations=(
            "Tracking says my order {order} was delivered yesterday but there's nothing here.",
            "The carrier marked my package as delivered but I never got it.",
            "I got a 'delivered' notification for my {product} but it's not at my door or with my neighbors.",
            "My parcel shows delivered to the mailroom but the building manager says nothing came.",
            "It says delivered at 2:14pm and I was home all day, no package.",
            "Order {order} shows delivered but I've checked everywhere.",
            "My {product} was 'delivered' according to tracking, but I don't have it.",
        ),
        asks=(
            "What do I do now?", "Can you send another one?", "Can you help me find it?", "Who's responsible for this?",
            "Do I get a refund?", "How do I file a claim?",
        ),
        answers=(
            "I'm sorry — that's stressful. Carriers occasionally mark parcels as delivered up to 48 hours before they actually drop them off, so please check around your property, with neighbors and with any mailroom or reception. If it still hasn't turned up after 48 hours, reply here and we'll open a claim with the carrier and reship your order or refund it, at no cost to you.",
            "Sorry to hear that! Parcels sometimes get a 'delivered' scan up to 48 hours early, and they're often left with a neighbor, at a side door or in a mailroom. If it's still missing 48 hours after the delivered scan, we'll file a claim with the carrier and either send a replacement or give you a full refund — your choice.",
        ),
        followups=(
            FollowUp(
                customer=("it's been 3 days already", "I already waited 2 full days, nothing.",
                          "It's been more than that. Neighbors don't have it either."),
                agent=("Thanks for checking. Since it's past 48 hours, I've opened a claim with the carrier now. These usually take up to 3 business days, and once it's done we'll reship your order or refund it, whichever you prefer.",
                       "Understood — as it's been over 48 hours, I've filed the claim with the carrier. It usually takes up to 3 business days, then we'll send a replacement or a full refund, your choice."),
                article="KB-ORD-02",
            ),
            FollowUp(
                customer=("do I need to file a police report?", "Do I have to contact the carrier myself?",
                          "should I call the police or something?"),
                agent=("No, you don't need to do anything else — we handle the claim with the carrier directly. All we need is your confirmation that it hasn't arrived 48 hours after the delivered scan.",
                       "Not at all, we deal with the carrier for you. Just confirm it still hasn't shown up 48 hours after the 'delivered' scan and we'll take it from there."),
                article="KB-ORD-02",
            ),
            FU_REPLACEMENT_EXPRESS,
        ),
    ),
    Topic(
        id="wrong-item",
        articles=("KB-ORD-03",),
        needs_order=True, weight=1.1, angry_rate=0.3, problem=True,
        situations={
            "*": (
                "I ordered the {product} but the box had a {other_product} in it.",
                "Got my order {order} today and it's the wrong item entirely.",
                "Opened my package and it's not what I ordered, it's a {other_product}.",
                "I think I received someone else's order — the name on the packing slip isn't mine.",
                "The {product} I received is the wrong color. I ordered green and got orange.",
                "You sent me the wrong thing. I ordered a {product}.",
            ),
            "jacket": (
                "I ordered the {product} in {size} but received a {other_size}.",
                "The packing slip says {size} but the {product} in the bag is a {other_size}.",
            ),
            "boots": (
                "I ordered the {product} in size {size} and got a {other_size}.",
                "The box says {size} but the {product} inside are a {other_size}.",
            ),
        },
        asks=(
            "How do I get the right one?", "Can you send the correct item asap?", "What should I do with the wrong one?",
            "Do I have to pay to send it back?", "Please fix this.", "How do we sort this out?",
        ),
        answers=(
            "I'm sorry we sent the wrong item! Please reply with a photo of what you received along with the packing slip. We'll ship the correct item by express shipping (1-2 business days) at no cost, and email you a prepaid return label for the wrong one — you don't have to wait for the return to reach us first. Mix-ups just need to be reported within 14 days of delivery.",
            "Apologies for the mix-up. If you can send a photo of the item and the packing slip, we'll get the right item out to you free of charge by express shipping (1-2 business days), plus a prepaid label so you can return the wrong one at no cost. There's no need to wait for the return first. (We accept wrong-item reports within 14 days of delivery.)",
            "That's our mistake, sorry! Send me a quick photo of the item and the packing slip and I'll have the correct one shipped by express (1-2 business days), free of charge. A prepaid return label for the wrong item will follow by email, and we don't wait for it to come back before shipping yours. We handle these within 14 days of delivery.",
        ),
        followups=(
            FollowUp(
                customer=("ok I attached the photos. how long until the label comes?",
                          "Photos sent. When will I get the return label?",
                          "just sent the pics. when does the new one ship?"),
                agent=("Thanks, I've got the photos. Your prepaid return label will be emailed within 1 business day, and the correct item ships by express (1-2 business days).",
                       "Got them, thank you! The correct item is going out by express shipping (1-2 business days), and the prepaid return label will reach your inbox within 1 business day."),
                article="KB-ORD-03",
            ),
            FollowUp(
                customer=("can I just send it back and get a refund instead?",
                          "Honestly I'd rather have my money back.",
                          "what if I don't want a replacement?"),
                agent=("That's absolutely fine — just send the wrong item back with the prepaid label, and the refund goes to your original payment method within 5-7 business days.",
                       "No problem at all. Use the prepaid label to send the item back and we'll refund your original payment method within 5-7 business days."),
                article="KB-ORD-03",
            ),
            FollowUp(
                customer=("do I need the original packaging to send it back?",
                          "I threw away the box, is that a problem?",
                          "Does it need to go back in the same bag?"),
                agent=("No original packaging needed — any sturdy box or bag works. Just attach the prepaid label and drop it off with the carrier.",
                       "Not a problem at all: any sturdy box or bag will do. Stick the prepaid label on and hand it to the carrier."),
                article="KB-RET-02",
            ),
        ),
    ),
    Topic(
        id="missing-item",
        articles=("KB-ORD-03",),
        needs_order=True, weight=0.9, angry_rate=0.2, problem=True,
        situations=(
            "My order {order} arrived but the {product} wasn't in the box.",
            "I only got part of my order, the {product} is missing.",
            "The package came with everything except the {product}.",
            "Box arrived today, {product} missing. The packing slip lists it though.",
            "I ordered 3 things and only 2 showed up.",
            "The {product} is missing from my delivery but I was charged for it.",
        ),
        asks=(
            "Where is it?", "Was it shipped separately?", "Can you send it?", "Can you check what happened?",
            "Do I get a refund for the missing item?", "What should I do?",
        ),
        answers=(
            "Sorry about that! First, please check your shipping confirmation email: some items ship from a second warehouse, and if so they're marked 'ships separately' with their own tracking number. If the missing item isn't listed that way, we'll send it out free of charge by express shipping (1-2 business days) — missing items just need to be reported within 14 days of delivery.",
            "Thanks for letting us know. Items sometimes come from a different warehouse — in that case your shipping confirmation lists them as 'ships separately', with a separate tracking number. If that's not the case here, we'll ship the missing item by express (1-2 business days) at no cost. We handle missing-item reports up to 14 days after delivery.",
        ),
        followups=(
            FollowUp(
                customer=("it says ships separately but there's no tracking yet",
                          "Found it, it says 'ships separately'. But the tracking is blank?",
                          "ok the email says separate shipment. tracking shows nothing though"),
                agent=("That's normal — the second parcel gets its own tracking email when it leaves the other warehouse, and tracking can take up to 24 hours to show the first scan.",
                       "No need to worry: the separate parcel has its own tracking, which can take up to 24 hours to show the first scan after it leaves the second warehouse."),
                article="KB-ORD-03",
            ),
            FollowUp(
                customer=("I'd rather just get a refund for it", "Can I get a refund for that item instead?",
                          "actually just refund it please"),
                agent=("No problem — I can refund the missing item instead. It goes back to your original payment method within 5-7 business days.",
                       "Sure, I'll refund the missing item rather than reship it. You'll see it on your original payment method within 5-7 business days."),
                article="KB-ORD-03",
            ),
        ),
    ),
    Topic(
        id="damaged-item",
        articles=("KB-RET-03",),
        needs_order=True, weight=1.1, angry_rate=0.3, problem=True,
        situations={
            "*": (
                "My {product} arrived damaged — the box was crushed and it's broken.",
                "Order {order} arrived today and the {product} is damaged.",
                "My {product} was damaged in shipping, the packaging was torn open.",
                "The box was soaking wet and the {product} inside is ruined.",
            ),
            "stove": ("Just unboxed my {product} and it's scratched and dented.",
                      "The {product} arrived with a bent pot support."),
            "tent": ("One of the poles for my {product} was snapped when it arrived.",
                     "The {product} came with a broken zipper on the door right out of the box."),
            "jacket": ("The {product} I received has a tear in the sleeve.",
                       "The {product} came with a broken zipper right out of the box."),
            "boots": ("One of the {product} has a big scuff and a torn lace loop.",),
            "backpack": ("The {product} I received has a tear in it.",
                         "A buckle on the {product} was already broken when I opened the box."),
            "sleeping-bag": ("The {product} came with a broken zipper right out of the box.",),
        },
        asks=(
            "Can I get a replacement?", "I'd like a refund.", "What are my options?", "How do I return it?",
            "Do I need to send it back?", "What do you need from me?",
        ),
        answers=(
            "I'm really sorry your {product} arrived damaged. Please reply with a couple of photos of the damage and the shipping box. Since it was damaged in transit, we'll email you a free return label, and you can choose a replacement or a full refund. Shipping damage just needs to be reported within 14 days of delivery.",
            "Oh no, sorry about that! Send us photos of the {product} and the box it came in, and we'll email a free return label straight away. You can then have a replacement or a full refund — your choice. We cover shipping damage reported within 14 days of delivery.",
            "That's not how it should arrive — sorry! If you send photos of the item and the box, I'll set up a free return label for you. You can pick a replacement or a full refund. (We take damage reports within 14 days of delivery, so you're fine.)",
        ),
        followups=(
            FU_REFUND_TIMING,
            FollowUp(
                customer=("can you send the replacement before I return the broken one?",
                          "Do I have to wait for you to get the damaged one before the new one ships?",
                          "will the new one ship right away or after you get mine?"),
                agent=("For damaged items we ship the replacement as soon as the return label has been created, so you don't have to wait for the return to reach us.",
                       "No waiting needed — the replacement ships as soon as your free return label is created."),
                article="KB-RET-03",
            ),
            FU_WARRANTY,
        ),
    ),
    Topic(
        id="returns-policy",
        articles=("KB-RET-01", "KB-RET-02"),
        weight=1.8, angry_rate=0.06,
        situations={
            "*": (
                "I bought the {product} a couple of weeks ago and it's not really what I expected.",
                "I'd like to return the {product} from order {order}.",
                "I got the {product} as a gift and I already have one.",
                "Changed my mind about the {product}, it's still unused with the tags on.",
                "I'm a Trail Club member and want to return something I bought about 6 weeks ago.",
                "My {product} arrived {days} days ago and I'm not happy with it.",
                "Thinking about returning the {product}.",
            ),
            "jacket": ("The {product} doesn't fit the way I hoped.",
                       "I ordered two sizes of the {product} to try on and want to send one back."),
            "boots": ("The {product} don't fit the way I hoped.",
                      "I ordered two sizes of the {product} to try on and want to send one pair back."),
            "tent": ("The {product} is smaller inside than I expected.",),
            "backpack": ("The {product} is too big for my frame.",),
        },
        asks=(
            "What's your return policy?", "How do I return it?", "Can I still return it?",
            "How many days do I have to return it?", "Is return shipping free?", "Can I return it if I've tried it on?",
            "What's the process?",
        ),
        answers=(
            f"Of course! You can return unused items with their original tags within 30 days of delivery (60 days if you're a Juniper Trail Club member) — trying things on indoors is totally fine. Start the return at {SHOP}/returns. A prepaid return label costs $6.95, which we deduct from your refund; it's free if the item is defective or we sent the wrong thing. Items marked 'Final sale' can't be returned.",
            f"Happy to help with that. Our return window is 30 days from delivery, or 60 days for Juniper Trail Club members, as long as the item is unused and still has its tags (trying it on at home is fine). Just head to {SHOP}/returns to start. You can use our prepaid label for $6.95 (taken off the refund) or send it back yourself — the label is free for defective or incorrect items. 'Final sale' items aren't returnable.",
            f"Sure thing. Unused items with tags attached can come back within 30 days of delivery — Juniper Trail Club members get 60 days. Start at {SHOP}/returns and either print our prepaid label ($6.95, deducted from your refund, free for defective or wrong items) or ship it back on your own. The only exception is anything marked 'Final sale'.",
        ),
        followups=(
            FU_REFUND_TIMING,
            FU_RETURN_LABEL_COST,
            FollowUp(
                customer=("I'm in Canada, is it the same for me?", "Does this work the same from the EU?",
                          "what if I live in canada?"),
                agent=(f"Yes, the same windows and the same portal ({SHOP}/returns). The only difference is that the prepaid return label from Canada or the EU costs $14.95 — still free for defective or wrong items.",
                       f"It's the same process through {SHOP}/returns with the same return windows. The prepaid label from Canada or the EU is $14.95, deducted from the refund, and free if the item is defective or wrong."),
                article="KB-RET-01",
            ),
            FollowUp(
                customer=("can I return it at your Portland store instead?", "Can I just drop it off in store?",
                          "is there somewhere I can drop it off in person?"),
                agent=("Yes! You can drop returns off at our Portland flagship store at 418 Alder Lane — there's no label fee for in-store returns. Just bring your order number.",
                       "Absolutely — bring it to our flagship store at 418 Alder Lane in Portland with your order number. In-store returns have no label fee."),
                article="KB-RET-02",
                inline=("Can I drop it off at your store?",),
            ),
        ),
    ),
    Topic(
        id="refund-status",
        articles=("KB-REF-01",),
        needs_order=True, weight=1.5, angry_rate=0.35, problem=True,
        situations=(
            "I sent back my {product} last week and haven't seen my refund yet.",
            "My return for order {order} was delivered to your warehouse {days} days ago but no refund.",
            "Still waiting on my refund for the {product}.",
            "I returned something almost 3 weeks ago and my card still hasn't been credited.",
            "The tracking shows you received my return but I haven't heard anything.",
            "I got an email saying my refund was processed but it's not on my statement.",
            "Where is my refund for {order}?",
        ),
        asks=(
            "When will I get my money back?", "Where's my refund?", "How long do refunds take?", "Can you check on it?",
            "Why is it taking so long?", "Can you speed it up?",
        ),
        answers=(
            "Sorry for the wait! Refunds go back to your original payment method within 5-7 business days after our warehouse receives the item, and we send an email as soon as it's processed. If you paid with a gift card, that part is refunded to the gift card. Original shipping charges are only refunded when the item was defective or we made a mistake.",
            "Thanks for checking in. Once your return arrives at our warehouse, the refund is issued to the original payment method within 5-7 business days — you'll get a confirmation email when that happens. Gift card payments go back onto the gift card, and the original shipping fee is refunded only for defective or incorrect items.",
            "I understand you want to see that money back. Our timeline is 5-7 business days from the moment the warehouse receives your return, and the refund always goes to the original payment method (gift card amounts back to the gift card). You'll get an email once it's processed. Original shipping is refunded only if the item was defective or wrong.",
        ),
        followups=(
            FollowUp(
                customer=("can you send it to a different card? my old one was cancelled",
                          "The card I paid with is closed now, what happens?",
                          "I don't have that card anymore, can it go to my new one?"),
                agent=("Refunds can only go to the original payment method. If that card has been closed, your bank still receives the refund and passes it on to your new card or account — it's worth giving them a quick call.",
                       "We can only refund the original payment method, but don't worry: when a card is closed, the bank forwards the refund to your new card or account."),
                article="KB-REF-01",
            ),
            FollowUp(
                customer=("it's been more than 7 business days though", "It's already been over a week since you got it!",
                          "that time has passed already"),
                agent=(f"Thanks for flagging that — I've escalated it to our returns team, and they'll follow up by email {ESCALATION}.",
                       f"You're right, that's longer than it should be. I've escalated it to the returns team; expect an email from them {ESCALATION}."),
                article=None,
            ),
            FollowUp(
                customer=("will the return label fee be taken off?", "Is the label fee deducted?",
                          "why is my refund less than what I paid?"),
                agent=("If it was a regular return with our prepaid label, the $6.95 label fee is deducted from the refund. For defective or wrong items there's no fee.",
                       "For regular returns sent with our prepaid label, $6.95 is taken off the refund; defective or wrong items don't have that fee."),
                article="KB-REF-01",
            ),
        ),
    ),
    Topic(
        id="exchange-size",
        articles=("KB-RET-04", "KB-SIZ-01"),
        kinds=SIZED_KINDS, weight=1.2, angry_rate=0.05,
        situations={
            "*": (
                "The {product} I ordered in {size} is too small.",
                "I need to swap my {product} for a {other_size}.",
                "Can I exchange the {product} for a bigger size?",
                "My {product} in {size} is a bit too big, I'd like a {other_size}.",
                "Ordered {size} in the {product}, should have gone with {other_size}.",
                "I want to exchange the {product} for a different color.",
            ),
            "jacket": ("The {product} fits in the shoulders but the sleeves are too short, I think I need a {other_size}.",),
            "boots": ("The {product} pinch my toes, I need a half size up.",),
        },
        asks=("How do I exchange it?", "Can you just send the other size?", "Is the exchange free?",
              "Do I have to return it first?", "How does that work?"),
        answers=(
            f"Easy to sort out! Go to {SHOP}/returns, pick the {{product}} and choose 'Exchange', then select the new size or color. We ship the replacement free of charge as soon as your return gets its first carrier scan. The usual $6.95 return label fee applies unless the item is defective, and exchanges follow the same 30-day window (60 days for Juniper Trail Club members). For a completely different product, just return it and place a new order.",
            f"Sure! Exchanges for another size or color go through {SHOP}/returns — choose 'Exchange' instead of 'Refund'. The new size ships free once the carrier scans your return, so there's no waiting for it to reach us. The $6.95 return label fee applies (unless it's defective), and you have 30 days from delivery, or 60 days as a Juniper Trail Club member.",
        ),
        followups=(
            FollowUp(
                customer=("what if the size I want is out of stock?", "And if the other size is sold out?",
                          "what happens if you don't have it in my size?"),
                agent=("If the new size is out of stock, we'll let you know and refund the item instead, to your original payment method within 5-7 business days after our warehouse receives it. You can also use 'Notify me' on the product page to get an email when it's back.",
                       "In that case we refund the item to your original payment method within 5-7 business days after it reaches our warehouse. The 'Notify me' button on the product page will email you when your size is back."),
                article="KB-RET-04",
            ),
            FollowUp(
                customer=("which size should I go for?", "Any advice on sizing this time?",
                          "should I go up a full size?"),
                agent={
                    "jacket": ("Check the size chart under 'Size & fit' on the product page. If you're between sizes or want to layer underneath, we recommend sizing up — note the Stormline Rain Jacket has an athletic fit.",
                               "The size chart under 'Size & fit' is the best guide; between sizes or planning to layer, go one size up. The Stormline Rain Jacket is athletic fit, the others are regular fit."),
                    "boots": ("Our Ridgeline Hiking Boots and Talus Mid GTX Boots run about half a size small, so we suggest ordering half a size up from your usual shoe size. Switchback Trail Runners are true to size.",
                              "Half a size up is usually right for the Ridgeline and Talus Mid GTX Boots, as they run about half a size small. The Switchback Trail Runners are true to size."),
                },
                article={"jacket": "KB-SIZ-01", "boots": "KB-SIZ-02"},
            ),
        ),
    ),
    Topic(
        id="cancel-order",
        articles=("KB-ORD-04",),
        needs_order=True, weight=1.3, angry_rate=0.15,
        situations=(
            "I just placed order {order} by mistake.",
            "I ordered the {product} about 20 minutes ago and changed my mind.",
            "I accidentally ordered the {product} twice.",
            "I need to cancel order {order}, I found what I needed locally.",
            "I placed an order this morning and want to cancel it.",
            "Ordered the wrong {product}, would rather cancel and reorder.",
            "My order {order} was placed yesterday, I want to cancel it.",
        ),
        asks=("Can you cancel it?", "Is it too late to cancel?", "Please cancel it asap.", "How do I cancel?",
              "Will I be charged?"),
        answers=(
            "Good news — it hadn't been packed yet, so I've cancelled it for you. We only charge your card once an order is packed, so what you see is a pending authorization that your bank releases within 3-5 business days. For next time: orders can be cancelled until they're packed (usually within 1 hour of ordering) with the 'Cancel order' button on your order page.",
            "Done! The order wasn't packed yet, so the cancellation went through. Since cards are only charged when an order is packed, there's just a pending authorization, which your bank will release within 3-5 business days. Tip: the 'Cancel order' button on your order page works until the order is packed, usually within 1 hour of ordering.",
            "I'm sorry — this order has already been packed, so it can no longer be cancelled. Orders can only be cancelled before they're packed, which usually happens within 1 hour of ordering. Once it arrives, you can send it back under our normal returns policy.",
            "Unfortunately it's already been packed, and packed orders can't be cancelled — the cancellation window is only until packing, usually within 1 hour of ordering. When it arrives you can return it like any other order.",
        ),
        followups=(
            FollowUp(
                customer=("will I still be charged?", "so do I get my money back?", "Is there a charge on my card?"),
                agent=("We only charge your card when an order is packed. A cancelled order only leaves a pending authorization, which your bank releases within 3-5 business days. If the order was already packed, you get the money back through a return instead.",
                       "Cards are charged at packing. For a cancelled order you'll only see a pending authorization that drops off within 3-5 business days; packed orders are refunded through the normal return process."),
                article="KB-ORD-04",
            ),
            FollowUp(
                customer=("can I just change the size instead of cancelling?", "Could you add another item to it instead?",
                          "can you edit the order rather than cancel?"),
                agent=("We can't edit the items on an order, I'm afraid. If it hasn't been packed yet, the quickest route is to cancel and place a new order; otherwise you can exchange it once it arrives.",
                       "Orders can't be edited once placed. Before packing you can cancel and re-order; after that, an exchange after delivery is the way to go."),
                article="KB-ORD-04",
            ),
            FU_RETURN_LABEL_COST,
        ),
    ),
    Topic(
        id="change-address",
        articles=("KB-ORD-05",),
        needs_order=True, weight=1.0, angry_rate=0.08,
        situations=(
            "I just realized I put my old address on order {order}.",
            "I moved last month and the {product} is going to my old place.",
            "There's a typo in the shipping address on my order — wrong apartment number.",
            "Can I have order {order} shipped to my office instead of home?",
            "I'll be away next week, can I change where my {product} gets delivered?",
            "Wrong zip code on my order!",
        ),
        asks=("Can you change it?", "Is it too late to update the address?", "How do I fix the address?",
              "Can the carrier redirect it?", "What can I do?"),
        answers=(
            "You caught it in time — the order hadn't been packed yet, so I've updated the shipping address. For the future: addresses can only be changed before an order is packed, which usually happens within 1 hour of ordering.",
            "Unfortunately the order has already shipped, so we can't change the address on our side. Addresses can only be changed before an order is packed (usually within 1 hour of ordering). For US deliveries, you can ask the carrier to redirect the parcel or hold it at a pickup location using your tracking number — the carrier may charge a small fee for that.",
            "We can change a shipping address only until the order is packed, usually within 1 hour of ordering — and yours had already gone out, sorry. If it's a US delivery, the carrier can redirect it or hold it for pickup if you contact them with the tracking number (they may charge a fee).",
        ),
        followups=(
            FollowUp(
                customer=("can I ship it to Canada instead? I'm moving there", "Could it go to my address in France instead?",
                          "what if the new address is in another country?"),
                agent=("I'm afraid we can't change the destination country on an existing order, because duties and taxes are calculated at checkout for each country. You'd need to return it and place a new order with the new address.",
                       "The destination country can't be changed after checkout, since duties and taxes are calculated for that country. The best option is a new order to the new address."),
                article="KB-INT-02",
            ),
            FollowUp(
                customer=("what happens if it gets delivered to the old address?", "And if the carrier can't deliver it?",
                          "what if nobody is there to take it?"),
                agent=("If the carrier can't deliver it, the parcel comes back to our warehouse and we refund you to the original payment method within 5-7 business days after it arrives.",
                       "Undeliverable parcels come back to our warehouse, and we refund your original payment method within 5-7 business days after they arrive."),
                article="KB-ORD-05",
            ),
        ),
    ),
    Topic(
        id="payment-declined",
        articles=("KB-PAY-01",),
        weight=1.1, angry_rate=0.3, problem=True,
        situations=(
            "My card keeps getting declined at checkout.",
            "I tried to buy the {product} three times and it says payment failed.",
            "Checkout won't accept my Visa, it just says 'declined'.",
            "Payment declined but my bank says there's nothing wrong with the card.",
            "The site says my payment didn't go through but I see a charge on my banking app.",
            "Apple Pay isn't working on your site.",
            "Trying to pay with PayPal and it keeps bouncing me back to the cart.",
        ),
        asks=("Why is this happening?", "What am I doing wrong?", "Can you put the order through for me?",
              "Will I be charged multiple times?", "Is there another way to pay?"),
        answers=(
            "Sorry you're running into this! The most common reasons are a billing address or ZIP/postal code that doesn't exactly match what your bank has on file, your bank's fraud filter blocking a first purchase with us, or an expired card or mistyped security code. Failed attempts can show up as pending authorizations, but they aren't charges — your bank releases them within 3-5 business days. We accept Visa, Mastercard, American Express, Discover, PayPal, Apple Pay, Google Pay and Juniper gift cards if you'd like to try another method. For security, we can't take card details over chat, email or phone.",
            "That's frustrating, sorry! Declines usually come from a billing address or ZIP/postal code mismatch, a fraud filter at your bank, or an expired card or wrong security code. Any failed attempts that show as pending are authorizations, not charges, and your bank releases them within 3-5 business days. You can also pay with Visa, Mastercard, American Express, Discover, PayPal, Apple Pay, Google Pay or a Juniper gift card. Please don't send card details to us — we never take them by chat, email or phone.",
        ),
        followups=(
            FollowUp(
                customer=("I see 3 pending charges on my account now!", "so I won't be charged for all the failed tries?",
                          "my banking app shows several holds, what about those?"),
                agent=("Those are pending authorizations from the failed attempts, not actual charges. Your bank releases them automatically within 3-5 business days.",
                       "Only a successful order is charged. The holds from declined attempts are authorizations that your bank drops within 3-5 business days."),
                article="KB-PAY-01",
            ),
            FollowUp(
                customer=("can I just pay over the phone?", "Can I give you my card number and you run it?",
                          "could you take the payment manually?"),
                agent=("For your security our team never takes card details by phone, chat or email — all payments go through the secure checkout. PayPal, Apple Pay or Google Pay are good alternatives if your card keeps being declined.",
                       "We can't process card details manually, for your security: payments only go through the secure checkout. If your card keeps failing, PayPal, Apple Pay or Google Pay usually work."),
                article="KB-PAY-01",
            ),
            FollowUp(
                customer=("do you take afterpay or klarna?", "Can I pay in installments?", "is there a pay later option?"),
                agent=("At the moment we accept Visa, Mastercard, American Express, Discover, PayPal, Apple Pay, Google Pay and Juniper gift cards — we don't offer buy-now-pay-later options.",
                       "We don't offer buy-now-pay-later, sorry. Accepted methods are Visa, Mastercard, American Express, Discover, PayPal, Apple Pay, Google Pay and Juniper gift cards."),
                article="KB-PAY-01",
            ),
        ),
    ),
    Topic(
        id="promo-code",
        articles=("KB-PRO-01",),
        weight=1.1, angry_rate=0.25,
        situations=(
            "I'm trying to use the code {promo} and it says invalid.",
            "My welcome discount code isn't working at checkout.",
            "The promo code from your email won't apply to my cart.",
            "I forgot to enter my discount code on order {order}.",
            "Code {promo} worked yesterday and now it says expired.",
            "I have two codes and can't get both to apply.",
            "The {promo} code won't work on the {product}.",
        ),
        asks=("Why isn't it working?", "Can you apply it manually?", "Can you honor it?", "What am I doing wrong?",
              "Can I still get the discount?"),
        answers=(
            "Let's figure this out! A few things to check: only one promo code can be used per order; codes don't apply to gift cards or items marked 'Final sale'; and each code has an expiry date in the email it came with — expired codes can't be reactivated. Also make sure it's entered in the 'Promo code' box at checkout, not the gift card field. Unfortunately, codes can't be added to an order after it's been placed.",
            "Sorry about the hassle! Usually it's one of these: a second code in the cart (only one promo code per order), items marked 'Final sale' or gift cards (codes don't apply to those), or an expired code — those can't be reactivated. Double-check it's in the 'Promo code' box rather than the gift card field. Codes also can't be applied to an order that's already been placed.",
        ),
        followups=(
            FollowUp(
                customer=("it's the welcome code from signing up", "it's the newsletter signup one",
                          "I got it when I joined the mailing list"),
                agent=("The welcome code gives 10% off your first full-price order and is valid for 30 days after you sign up. It's tied to the email you signed up with, so make sure you check out with that same email.",
                       "That one is 10% off your first full-price order, valid for 30 days after sign-up, and it only works with the email address you used to sign up."),
                article="KB-PRO-01",
            ),
            FollowUp(
                customer=("so you can't apply it to my order that I already placed?", "can't you add it to my existing order?",
                          "Can you refund the discount on the order I just placed?"),
                agent=("I'm sorry, codes can't be added after an order is placed. If the order hasn't been packed yet (usually within 1 hour of ordering), you could cancel it and re-order with the code.",
                       "Codes can't be applied retroactively. If your order hasn't been packed yet — that usually happens within 1 hour — you can cancel it and place it again with the code."),
                article="KB-ORD-04",
            ),
            FollowUp(
                customer=("ok, but the {product} is also cheaper now than when I bought it", "Also the price dropped since I ordered, anything you can do?"),
                agent=("Good news there: if our price dropped within 14 days of your purchase, we refund the difference. Just reply with your order number.",
                       "We price match our own price drops within 14 days of purchase — send me the order number and I'll refund the difference."),
                article="KB-PRC-01",
            ),
        ),
    ),
    Topic(
        id="price-match",
        articles=("KB-PRC-01",),
        weight=1.0, angry_rate=0.06,
        situations=(
            "I bought the {product} last week and now it's on sale on your site.",
            "I found the {product} cheaper at {competitor}.",
            "The {product} dropped in price two days after I ordered it.",
            "{competitor} has the same {product} for $30 less.",
            "I saw the {product} for less from a seller on a marketplace site.",
            "{competitor} has the {product} cheaper right now.",
            "Your price on the {product} went down right after I bought it.",
        ),
        asks=("Can you match it?", "Can I get the difference back?", "Do you price match?",
              "How does price matching work?", "Is it worth returning it and buying it again?"),
        answers=(
            "Yes, we price match within 14 days of your purchase. If our own price drops, we refund the difference; we'll also match an identical item (same model, color and size) that's in stock at an authorized retailer in the US, Canada or the EU. We can't match marketplace sellers, clearance, bundles, flash sales or membership-only prices. Send us the link and your order number, and the difference goes back to your original payment method within 5-7 business days.",
            "Good news — within 14 days of purchase we'll refund the difference if our own price drops, or match an authorized retailer in the US, Canada or the EU selling the identical item (same model, color, size) in stock. Marketplace sellers, clearance, bundles, flash sales and membership-only prices are excluded. Send me the link plus your order number; the difference is refunded to your original payment method within 5-7 business days.",
        ),
        followups=(
            FollowUp(
                customer=("here's the link to their page, it's in stock", "it's on their official site, not a marketplace",
                          "sent you the link. same color and size"),
                agent=("Thanks! That's an authorized retailer and the item matches, so I've refunded the difference to your original payment method — it should show within 5-7 business days.",
                       "Perfect, that qualifies. The difference is on its way to your original payment method and should appear within 5-7 business days."),
                article="KB-PRC-01",
            ),
            FollowUp(
                customer=("what if it goes on sale again after the 14 days?", "And if it drops again next month?"),
                agent=("Price adjustments only apply within 14 days of purchase. After that, if you're still inside the return window, you could return it and buy it again at the new price.",
                       "After 14 days we can't adjust the price anymore, but if the item is still within the return window you can return it and re-buy at the lower price."),
                article="KB-PRC-01",
            ),
        ),
    ),
    Topic(
        id="gift-card",
        articles=("KB-GFT-01",),
        weight=1.0, angry_rate=0.06,
        situations=(
            "I got a Juniper gift card for my birthday a few years ago.",
            "My gift card isn't working at checkout.",
            "I bought an e-gift card for my brother and he never got the email.",
            "I want to check how much is left on my gift card.",
            "I lost the physical gift card I got for Christmas.",
            "I have two gift cards and want to use both on one order.",
            "I have a $50 gift card and want to buy the {product}, which costs more than that.",
        ),
        asks=("Does it expire?", "What can I do?", "Can I get cash for the remaining balance?", "Can you help?",
              "How does this work?"),
        answers=(
            f"Happy to help! Juniper gift cards never expire and have no fees. You can check the balance any time at {SHOP}/giftcard, use up to 5 gift cards on one order, and pay any remaining amount with another payment method. E-gift cards arrive by email within 15 minutes (please check spam — we can resend them), and we can replace a lost physical card if you have the card number or the purchase receipt. Gift cards can't be exchanged for cash, except where the law requires it.",
            f"Good news first: our gift cards never expire and there are no fees. The balance is at {SHOP}/giftcard. You can combine up to 5 gift cards per order and cover the rest with another payment method. E-gift cards are emailed within 15 minutes (spam folders are the usual culprit, and we're happy to resend). Lost physical cards can be replaced with the card number or the receipt. They can't be cashed out, except where required by law.",
        ),
        followups=(
            FollowUp(
                customer=("can I get the leftover balance as cash?", "Can you refund what's left on it?",
                          "can I cash it out?"),
                agent=("Gift cards can't be exchanged for cash, except where the law requires it. The remaining balance stays on the card and never expires.",
                       "We can't cash out gift cards (except where the law requires it), but the balance never expires, so it'll be there for your next order."),
                article="KB-GFT-01",
            ),
            FollowUp(
                customer=("the e-gift card still hasn't arrived after an hour", "He checked spam, still nothing.",
                          "it's been way more than 15 minutes"),
                agent=("Sorry about that! E-gift cards normally arrive within 15 minutes. I've resent it to the recipient's email address — please ask them to check their spam folder too.",
                       "That's longer than the usual 15 minutes, sorry. I've just resent it; it's worth checking spam and promotions folders as well."),
                article="KB-GFT-01",
            ),
        ),
    ),
    Topic(
        id="warranty-claim",
        articles=("KB-WAR-01",),
        kinds=("tent", "jacket", "boots", "backpack", "sleeping-bag"),
        weight=1.2, angry_rate=0.15, problem=True,
        situations={
            "*": (
                "My {product} is falling apart after a year, that's not ok for the price.",
                "I bought the {product} last year and something's clearly wrong with it.",
                "My {product} is barely a year old and already failing.",
            ),
            "jacket": ("The seams on my {product} started leaking after one season.",
                       "The waterproof coating inside my {product} is peeling off.",
                       "The zipper on my {product} broke after about 8 months."),
            "sleeping-bag": ("The zipper on my {product} broke after about 8 months.",
                             "Down keeps leaking out of the seams of my {product}."),
            "tent": ("A pole on my {product} cracked during setup, I've only used it three times.",
                     "The seam tape on my {product} is peeling after two trips."),
            "boots": ("The sole on my {product} is coming off.", "My {product} started leaking at the seams after a few months."),
            "backpack": ("A shoulder strap on my {product} is tearing at the seam.",
                         "The hip belt buckle on my {product} snapped on a hike."),
        },
        asks=("Is this covered by warranty?", "How do I make a warranty claim?", "Can I get it replaced?",
              "What's your warranty?", "Can you fix it?"),
        answers=(
            f"Sorry to hear that! All our gear comes with a 2-year warranty from the date of delivery, covering manufacturing defects such as failed seams, zippers, buckles, delamination or sole separation (normal wear and tear, accidents and misuse aren't covered). Please file a claim at {SHOP}/warranty with your order number and a few photos. We review claims within 3 business days and then repair, replace or refund the item, with free shipping both ways for approved claims.",
            f"That does sound like something our warranty is for. You have 2 years from delivery on all gear for manufacturing defects — seams, zippers, buckles, delamination, sole separation — though not for normal wear, accidents or misuse. Submit a claim at {SHOP}/warranty with the order number and photos; we review it within 3 business days and repair, replace or refund it. Shipping is free both ways for approved claims.",
        ),
        followups=(
            FollowUp(
                customer=("I don't have the order number anymore, I bought it in your store",
                          "It was a gift so I don't have the order number.", "what if I can't find the receipt?"),
                agent=("No problem — if you bought it in store or don't have the order number, a photo of the receipt or the email address used at checkout works too.",
                       "That's fine: instead of the order number you can add a photo of the receipt or tell us the email used at checkout."),
                article="KB-WAR-01",
            ),
            FollowUp(
                customer=("what if it's not covered?", "And if you decide it's wear and tear?",
                          "what if it was my fault?"),
                agent=("If it turns out not to be a manufacturing defect, our repair service can usually fix it for a fee — zipper replacements, for example, start at $25 — and we always send a free quote before doing any work.",
                       "Then our paid repair service is the next step: for example, zipper replacements start at $25. You get a free quote first, so there are no surprises."),
                article="KB-REP-01",
            ),
            FollowUp(
                customer=("how long does the claim take?", "How long until I hear back?", "and then how long does it take?"),
                agent=("We review claims within 3 business days of receiving your photos, and approved claims get free shipping both ways.",
                       "You'll hear back within 3 business days, and shipping is free both ways if the claim is approved."),
                article="KB-WAR-01",
            ),
        ),
    ),
    Topic(
        id="repair-service",
        articles=("KB-REP-01",),
        kinds=("tent", "jacket", "backpack", "sleeping-bag"), weight=0.9, angry_rate=0.03,
        situations={
            "*": (
                "My dog chewed through part of my {product}, can you fix it?",
                "I tore my {product} on a branch.",
                "The zipper on my old {product} is broken and it's out of warranty.",
                "Do you repair {kinds}?",
                "My {product} is 4 years old and needs some love.",
                "I burned a small hole in my {product} at the campfire.",
            ),
            "tent": ("I snapped a pole on my {product} — can I get just the pole section?",
                     "The seam tape on my 5 year old {product} is coming off."),
        },
        asks=("How much would it cost?", "How does your repair service work?", "How long does it take?",
              "Is it worth fixing?", "Do you do repairs?"),
        answers=(
            f"We'd be glad to take a look! Our repair service handles damage that isn't covered by the warranty. Typical prices: zipper replacement from $25, seam re-taping from $35, patches from $10 and replacement tent pole sections $15. We send a free quote before starting any work, and turnaround is 2-3 weeks after your item arrives. Start at {SHOP}/repairs — you pay shipping to us, and we ship it back for free.",
            f"Yes, we repair gear! Send it in via {SHOP}/repairs; we'll give you a free quote before doing anything. Common repairs: patches from $10, zipper replacement from $25, seam re-taping from $35, and tent pole sections for $15. It usually takes 2-3 weeks once it reaches us. You cover the shipping to us; return shipping is on us.",
        ),
        followups=(
            FollowUp(
                customer=("do I have to pay shipping?", "Who pays for the shipping?", "is shipping included?"),
                agent=("You cover the shipping to us, and we ship the repaired item back to you for free.",
                       "Shipping to our repair team is on you; the return trip is free."),
                article="KB-REP-01",
            ),
            FollowUp(
                customer=("what if it's actually a defect?", "Isn't this something the warranty should cover?",
                          "it's less than 2 years old actually"),
                agent=(f"If it's a manufacturing defect within 2 years of delivery, it's covered by our warranty instead — file a claim at {SHOP}/warranty and there's no charge.",
                       f"Then it falls under our 2-year warranty and won't cost you anything: submit it at {SHOP}/warranty with your order number and photos."),
                article="KB-WAR-01",
            ),
        ),
    ),
    Topic(
        id="product-care",
        articles=("KB-CARE-01", "KB-CARE-02", "KB-CARE-03"),
        kinds=("jacket", "tent", "boots"), weight=1.0, angry_rate=0.02,
        kind_articles={"jacket": "KB-CARE-01", "tent": "KB-CARE-02", "boots": "KB-CARE-03"},
        situations=(
            "My {product} isn't waterproof anymore, water soaks right through.",
            "How should I wash my {product}?",
            "Water doesn't bead up on my {product} like it used to.",
            "What's the best way to clean my {product} after a muddy trip?",
            "Can I put my {product} in the washing machine?",
            "My {product} smells a bit musty after being stored all winter.",
            "Any tips to re-waterproof the {product}?",
        ),
        asks=("What do you recommend?", "Is there something I should buy?", "Any tips?", "Did I ruin it?",
              "How should I do it?"),
        answers={
            "jacket": (
                "Great question! Wash it with a technical wash on a gentle cycle at 30 °C / 86 °F — no fabric softener or bleach, as they clog the membrane. Then tumble dry on low for 20 minutes: the heat reactivates the water-repellent (DWR) finish. If water still doesn't bead afterwards, apply a spray-on DWR treatment and tumble dry again.",
                "Most of the time it just needs a clean: use a technical wash, gentle cycle at 30 °C / 86 °F, and skip fabric softener and bleach. Tumble drying on low for 20 minutes reactivates the DWR finish. When water stops beading even after washing, re-proof it with a spray-on DWR and dry it again.",
            ),
            "tent": (
                "Please never machine wash or machine dry a tent — it damages the coatings. Sponge it clean with mild soap and lukewarm water, and make sure it's completely dry before you pack it away, otherwise mildew can set in. Store it loosely in a cool, dry place. When water stops beading on the fly, refresh it with a spray-on waterproofing, and re-seal any lifting seams with seam sealer.",
                "For tents: no washing machine or dryer, ever. A sponge with mild soap and lukewarm water does the job. Always dry it completely before storing (that's what causes the musty smell and mildew) and keep it loosely packed somewhere cool and dry. Once the fly stops beading water, use a spray-on waterproofing, and seam sealer for any seams that are lifting.",
            ),
            "boots": (
                "Brush off the dirt, rinse them with lukewarm water and take the insoles out. Let them air dry at room temperature, away from heaters or direct heat, which can crack leather and weaken the glue. For leather, re-wax with a leather conditioner; for fabric and GTX boots, use a spray-on waterproofing. Please don't put boots in the washing machine.",
                "Boots do best with a gentle routine: brush off dirt, rinse with lukewarm water, remove the insoles and let them air dry at room temperature (never next to a heater or other direct heat). Then re-wax leather with a leather conditioner, or use a spray-on waterproofing on fabric and GTX boots. The washing machine is a no-go.",
            ),
        },
        followups=(
            FollowUp(
                customer=("how often should I do that?", "How often should I re-proof it?",
                          "should I do this after every trip?"),
                agent=("Whenever water stops beading on the outer fabric of your {product} — for most people that's once or twice a season.",
                       "Only when water stops beading on the surface; a clean often revives it, so re-proof once or twice a season at most."),
                article=None,
            ),
            FU_WARRANTY,
        ),
    ),
    Topic(
        id="sizing-advice",
        articles=("KB-SIZ-01", "KB-SIZ-02"),
        kinds=SIZED_KINDS, weight=1.2, angry_rate=0.0,
        kind_articles={"jacket": "KB-SIZ-01", "boots": "KB-SIZ-02"},
        situations={
            "*": (
                "I'm usually a {size} but I'm not sure about the {product}.",
                "How does the {product} fit? I'm between sizes.",
                "Do the {product} run true to size?",
                "I'm about to order the {product} and can't decide on the size.",
                "I'm 5'10 and 180 lbs, what size {product} would you suggest?",
            ),
            "jacket": ("I want to wear a fleece under the {product}, should I size up?",
                       "Is the {product} cut slim or roomy?"),
            "boots": ("I have wide feet, will the {product} work for me?",
                      "I normally wear a {size} in sneakers — same for the {product}?"),
        },
        asks=("What size should I order?", "Any advice?", "Should I size up or down?",
              "Which size would you recommend?", "Thoughts?"),
        answers={
            "jacket": (
                "Every product page has a size chart under 'Size & fit'. Our jackets are regular fit, except the Stormline Rain Jacket, which has an athletic fit. If you're between sizes or want to layer a fleece or down jacket underneath, we recommend sizing up.",
                "Good question! Check the chart under 'Size & fit' on the product page. Jackets are regular fit apart from the Stormline Rain Jacket (athletic fit), and when you're between sizes or plan to layer, size up.",
            ),
            "boots": (
                "Our Ridgeline Hiking Boots and Talus Mid GTX Boots run about half a size small, so we recommend ordering half a size up from your usual shoe size. Switchback Trail Runners are true to size. Wide widths are marked 'W', and it's best to try boots on in the evening with your hiking socks, since feet swell during the day.",
                "Quick guide: the Ridgeline Hiking Boots and Talus Mid GTX Boots run about half a size small (order half a size up), while the Switchback Trail Runners are true to size. Look for 'W' for wide widths, and try them on in the evening with hiking socks for the most accurate fit.",
            ),
        },
        followups=(FU_EXCHANGE, FU_RETURN_LABEL_COST),
    ),
    Topic(
        id="back-in-stock",
        articles=("KB-STK-01",),
        weight=1.1, angry_rate=0.08,
        situations={
            "*": (
                "When will the {product} be back in stock?",
                "Is the {product} ever coming back? It says sold out.",
                "I've been waiting for the {product} to restock for ages.",
                "Any chance you're getting more of the {product} in green?",
                "The {product} says 'out of stock' online — do you have any in the warehouse?",
            ),
            "jacket": ("The {product} in {size} has been sold out for weeks.",),
            "boots": ("Size {size} of the {product} is always sold out.",),
        },
        asks=("Can you let me know when it's back?", "Can you reserve one for me?", "Do you know the restock date?",
              "Is there a waitlist?", "Any idea?"),
        answers=(
            "Thanks for your interest! The best way is the 'Notify me' button on the product page — pick your size and color and you'll get an email as soon as it's back. Unfortunately we can't share exact restock dates or reserve and hold items, and the stock shown online is everything we have. Alerts go out first come, first served, so it's worth acting quickly when you get one.",
            "I wish I had a date for you! We don't share exact restock dates and can't reserve or hold items, and the online stock is all there is. If you use 'Notify me' on the product page (choose size and color), we'll email you the moment it's back — first come, first served.",
        ),
        followups=(
            FollowUp(
                customer=("can I pre-order it instead?", "Is there a way to pre-order it?", "could I order it now and wait?"),
                agent=("Some items can be pre-ordered — if so, you'll see a 'Pre-order' button with an estimated ship date on the product page, and your card is only charged when it's packed. If you only see 'Notify me', pre-orders aren't available for that item.",
                       "Only if the product page shows a 'Pre-order' button with an estimated ship date (cards are charged when the item is packed). Otherwise, 'Notify me' is the way to go."),
                article="KB-PRE-01",
            ),
            FU_PICKUP_STORE,
        ),
    ),
    Topic(
        id="password-reset",
        articles=("KB-ACC-01",),
        weight=1.0, angry_rate=0.2,
        situations=(
            "I can't log into my account.",
            "I forgot my password and the reset email never arrives.",
            "The password reset link says it's expired.",
            "My account says it's locked.",
            "I keep getting 'incorrect password' even though I'm sure it's right.",
            "I can't sign in to see my orders.",
        ),
        asks=("Can you reset it for me?", "How do I get back in?", "What should I do?", "Can you unlock it?",
              "Help?"),
        answers=(
            "Sorry you're locked out! Use the 'Forgot password?' link on the sign-in page — the reset link we email is valid for 60 minutes, so use it right away and check your spam and promotions folders if it doesn't show up. After 5 failed sign-in attempts an account is locked for 30 minutes, so if you see a lock message, wait that out and then reset. Our team can't see or set passwords, so the reset link is the way to go.",
            "Let's get you back in. Click 'Forgot password?' on the sign-in page; the email contains a link that works for 60 minutes (check spam and promotions too). If you've tried 5 times unsuccessfully the account locks for 30 minutes — after that, the reset works normally. For security, we can't see or change passwords on our side.",
        ),
        followups=(
            FollowUp(
                customer=("still nothing in spam", "I checked spam, nothing there either.", "never came, even in junk"),
                agent=("Please make sure you're using the email address the account was created with — the reset email only goes there. If you checked out as a guest, there may be no account yet; you can create one with the same email and your past orders will be linked.",
                       "The reset email only goes to the address the account was created with, so try any other emails you use. If you always checked out as a guest, there's no account yet — create one with the same email and your orders will be linked."),
                article="KB-ACC-01",
            ),
            FollowUp(
                customer=("can you just tell me my password?", "Can't you set a new password for me?",
                          "just reset it on your end please"),
                agent=("For security, our team can't see or set passwords — the 'Forgot password?' link is the only way to reset it. The link is valid for 60 minutes.",
                       "I'm sorry, we have no access to passwords at all. The 'Forgot password?' link is the only way, and it works for 60 minutes."),
                article="KB-ACC-01",
            ),
        ),
    ),
    Topic(
        id="delete-account",
        articles=("KB-PRV-01",),
        weight=0.8, angry_rate=0.15,
        situations=(
            "Please delete my account and all my data.",
            "I want you to remove all my personal information from your systems.",
            "I'd like to close my Juniper account.",
            "Under GDPR I'm requesting erasure of my personal data.",
            "I don't want an account with you anymore.",
            "I'd like a copy of all the data you have about me.",
        ),
        asks=("How do I do that?", "How long does it take?", "Please confirm when it's done.", "What do you keep?"),
        answers=(
            f"Of course. You can request deletion (or a copy of your data) at {SHOP}/privacy-request. We'll verify your identity by email and complete the request within 30 days. Please note that we're required by law to keep order and tax records for 7 years, and that loyalty points and any Juniper Trail Club membership are forfeited when an account is deleted. Marketing emails stop right away.",
            f"No problem — submit the request at {SHOP}/privacy-request (the same form handles data copies). After a quick identity check by email, it's completed within 30 days. Order and tax records are kept for 7 years because the law requires it; loyalty points and Trail Club membership are forfeited, and marketing emails stop immediately.",
        ),
        followups=(
            FollowUp(
                customer=("what about my loyalty points?", "Will I lose my points?", "and my trail club membership?"),
                agent=("Loyalty points and any Juniper Trail Club membership are forfeited when the account is deleted, so you may want to use your points first.",
                       "They're forfeited once the account is deleted — it might be worth redeeming your points before you submit the request."),
                article="KB-PRV-01",
            ),
            FollowUp(
                customer=("why do you need to keep my orders for 7 years?", "Why can't you delete everything?",
                          "what do you keep after deleting?"),
                agent=("Tax and accounting laws require us to keep order and invoice records for 7 years. They're kept separately and aren't used for marketing or anything else.",
                       "Only order and tax records stay, for the 7 years the law requires; everything else is deleted, and those records aren't used for marketing."),
                article="KB-PRV-01",
            ),
        ),
    ),
    Topic(
        id="membership-club",
        articles=("KB-CLB-01",),
        weight=1.1, angry_rate=0.05,
        situations=(
            "What do I get with the Juniper Trail Club?",
            "Is the Trail Club worth it?",
            "I signed up for the Trail Club by accident.",
            "How much is the Trail Club membership?",
            "I want to cancel my Trail Club membership.",
            "Do Trail Club members get free shipping?",
            "I joined the Trail Club last week, does it apply to the order I placed before?",
        ),
        asks=("Can you explain?", "How does it work?", "Can I get a refund?", "What are the benefits?",
              "Can you tell me more?"),
        answers=(
            "The Juniper Trail Club costs $49 per year and includes free standard shipping on every order (no minimum), 60-day returns instead of 30, 2 loyalty points per $1 spent and early access to sales. Benefits start the moment you join, so they don't apply to earlier orders. You can cancel or turn off auto-renew any time in your account, and if you cancel within 14 days without using any benefits, we refund the full $49.",
            "Here's the rundown: $49 a year gets you free standard shipping on every order with no minimum, 60-day returns (instead of 30), double points (2 per $1) and early access to sales. Membership benefits start when you join and aren't applied to earlier orders. Cancel or switch off auto-renew whenever you like in your account — cancel within 14 days with no benefits used and you get the full $49 back.",
        ),
        followups=(
            FollowUp(
                customer=("does it auto renew?", "Will it renew automatically?", "do I get a reminder before it renews?"),
                agent=("Yes, it renews automatically each year at $49. We email a reminder 7 days before renewal, and you can turn off auto-renew in your account at any time.",
                       "It does renew yearly at $49, but you'll get a reminder email 7 days before, and auto-renew can be switched off in your account whenever you like."),
                article="KB-CLB-01",
            ),
            FollowUp(
                customer=("I already used free shipping once, can I still get a refund?", "what if I've already used it?"),
                agent=("Once a benefit has been used, the fee isn't refundable, but you can turn off auto-renew so it won't renew next year.",
                       "I'm sorry, after a benefit is used the fee can't be refunded — you can switch off auto-renew so you won't be charged again."),
                article="KB-CLB-01",
            ),
        ),
    ),
    Topic(
        id="loyalty-points",
        articles=("KB-LOY-01",),
        weight=1.0, angry_rate=0.1, needs_order=False,
        situations=(
            "My points from my last order aren't showing up.",
            "How do I use my loyalty points?",
            "I have 340 points, what are they worth?",
            "Do my points expire?",
            "I returned something and my points balance went down.",
            "Why didn't I get points for my order {order}?",
        ),
        asks=("Can you explain?", "How does it work?", "Can you check?", "What's going on?"),
        answers=(
            "Here's how points work: you earn 1 point per $1 spent (2 points per $1 as a Juniper Trail Club member), not counting gift cards or shipping. Points post 14 days after delivery, and returned items deduct the points they earned. Every 100 points is a $5 reward you can redeem in the 'Rewards' box at checkout. Points expire after 12 months without any account activity.",
            "Points are added 14 days after delivery — 1 point per $1 spent, or 2 per $1 for Juniper Trail Club members (gift cards and shipping don't earn points). If you return something, its points are deducted. 100 points = a $5 reward, which you apply in the 'Rewards' box at checkout. They expire only after 12 months with no account activity.",
        ),
        followups=(
            FollowUp(
                customer=("can I combine points with a promo code?", "Can I use a discount code too?",
                          "do rewards stack with codes?"),
                agent=("Yes, rewards can be combined with one promo code per order.",
                       "They can — one promo code per order plus your rewards."),
                article="KB-LOY-01",
            ),
            FollowUp(
                customer=("when exactly do points expire?", "So they never expire?", "how long do I have to use them?"),
                agent=("Points only expire if your account has no activity — no purchases or redemptions — for 12 months.",
                       "As long as there's some activity on your account, they stay; they expire after 12 months without any."),
                article="KB-LOY-01",
            ),
        ),
    ),
    Topic(
        id="international-shipping",
        articles=("KB-INT-01", "KB-INT-02"),
        weight=1.2, angry_rate=0.12,
        situations=(
            "Do you ship to Canada? I'm in {ca_city}.",
            "I'm in {eu_country}, can I order the {product}?",
            "Will I have to pay customs fees if I order to {eu_country}?",
            "The courier is asking me to pay import duties on my order {order}!",
            "How long does shipping to {eu_country} take?",
            "I live in {ca_city}, how much is shipping?",
            "Is VAT included in the price for EU orders?",
        ),
        asks=("How much is shipping?", "Are duties included?", "How long does it take?",
              "Will I get charged extra at delivery?", "How does it work?"),
        answers=(
            "We ship to the US, Canada and the 27 EU countries. Standard shipping to Canada and the EU takes 6-10 business days for a flat $19.95, free on orders over $200; international express takes 2-4 business days for $39.95. Duties and taxes (including VAT/GST) are calculated and charged at checkout, so there's nothing more to pay on delivery — if a courier asks you for fees, please don't pay and contact us. Prices are shown and charged in USD.",
            "Yes! We deliver to the US, Canada and all 27 EU countries. For Canada and the EU: standard 6-10 business days, flat $19.95 (free over $200), or express 2-4 business days for $39.95. All duties and taxes, VAT/GST included, are charged at checkout, so the courier shouldn't ask you for anything — if they do, don't pay; just let us know. Everything is priced and charged in USD.",
        ),
        followups=(
            FollowUp(
                customer=("the courier is still asking me for money", "They won't hand it over without payment!",
                          "ok but they sent me a bill for duties"),
                agent=("Please don't pay it — duties and taxes were already charged at checkout. Forward us the courier's message and we'll sort it out with them directly.",
                       "Don't pay anything; your duties and taxes were collected at checkout. Send us what the courier sent you and we'll take care of it."),
                article="KB-INT-02",
            ),
            FollowUp(
                customer=("can I return it from {eu_country}?", "How do returns work from Canada?", "and if I need to return it?"),
                agent=("Yes, through the same returns portal and within the same windows. The prepaid return label from Canada or the EU costs $14.95, deducted from your refund, and it's free for defective or wrong items.",
                       "Returns work the same as in the US, through the returns portal. The only difference: the prepaid label from Canada or the EU is $14.95 (free if the item is defective or wrong)."),
                article="KB-RET-01",
            ),
            FollowUp(
                customer=("can you also send fuel canisters?", "Can I add gas canisters for my stove?",
                          "do you ship stove fuel internationally?"),
                agent=("Unfortunately not — fuel canisters can only ship by standard ground within the contiguous US. The stoves themselves ship everywhere we deliver.",
                       "Fuel canisters are restricted to standard ground shipping within the contiguous US, so they can't go to Canada or the EU, sorry. Stoves are fine."),
                article="KB-SHP-02",
            ),
        ),
    ),
    Topic(
        id="shipping-cost",
        articles=("KB-SHP-01",),
        weight=1.3, angry_rate=0.06,
        situations=(
            "How much is shipping?",
            "Do you have free shipping?",
            "My cart is $68, do I get free shipping?",
            "I need the {product} by Friday, what's the fastest shipping?",
            "Why was I charged shipping on order {order}?",
            "How long does standard shipping take to {us_state}?",
            "What are my shipping options for the {product}?",
        ),
        asks=("How does it work?", "What are the options?", "Can you explain?", "Thanks in advance!"),
        answers=(
            "In the US, standard shipping takes 3-5 business days and costs $6.95 — it's free on orders over $75 (after discounts, not counting gift cards). Express takes 1-2 business days for $14.95. Orders placed before 2 pm ET on a business day ship the same day, and Juniper Trail Club members get free standard shipping on every order.",
            "Here are the US options: standard, 3-5 business days, $6.95 or free on orders over $75 (the total after discounts, gift cards excluded); express, 1-2 business days, $14.95. If you order before 2 pm ET on a business day, it ships the same day. Juniper Trail Club members always get free standard shipping.",
        ),
        followups=(
            FollowUp(
                customer=("so if I add a small item I'd get free shipping?", "does the free shipping count before or after my discount?",
                          "Do gift cards count towards free shipping?"),
                agent=("Exactly — once your order total after discounts goes over $75, standard shipping is free. Gift cards don't count towards it.",
                       "The $75 threshold is based on the total after discounts, and gift cards don't count, but anything else does."),
                article="KB-SHP-01",
            ),
            FollowUp(
                customer=("do you deliver on saturdays?", "Does express ship on weekends?", "what if I order friday night?"),
                agent=("Our warehouse ships Monday to Friday. Orders placed before 2 pm ET on a business day go out the same day; anything later ships the next business day.",
                       "We ship Monday to Friday only, so a Friday-night order goes out on Monday. Before 2 pm ET on a business day, it ships the same day."),
                article="KB-ORD-01",
            ),
            FU_PICKUP_STORE,
        ),
    ),
    Topic(
        id="restricted-items",
        articles=("KB-SHP-02",),
        kinds=("stove",), weight=0.7, angry_rate=0.12,
        situations=(
            "Why can't I add fuel canisters to my order to Canada?",
            "Checkout says the isobutane fuel can't ship to my address.",
            "Can I get the Juniper Isobutane Fuel 230g with express shipping?",
            "I live in Hawaii and the fuel canister is blocked at checkout.",
            "Why did my fuel canisters arrive separately from the rest of my order?",
            "Can you ship stove fuel to {eu_country}? I bought the {product}.",
        ),
        asks=("What's the deal?", "Why?", "Is there a way around it?", "Can you explain?"),
        answers=(
            "Fuel canisters are classed as hazardous materials, so they can only ship by standard ground within the contiguous US — not to Alaska, Hawaii, PO boxes, Canada or the EU, and never by express. If your order has fuel plus other items, the fuel ships separately by ground while the rest can still go express. Stoves themselves ship everywhere we deliver, and fuel can be picked up at our Portland store.",
            "Sorry for the confusion! Because fuel canisters are hazardous materials, carriers only allow standard ground shipping within the contiguous US: no Alaska, Hawaii, PO boxes, Canada or EU, and no express. That's also why fuel travels in a separate parcel by ground while the rest of your order can ship express. Stoves ship everywhere we deliver, and you can always pick fuel up at our Portland store.",
        ),
        followups=(
            FollowUp(
                customer=("can I pick it up in store instead?", "Where's the store?", "so the store has it?"),
                agent=("Yes — fuel canisters can be picked up at our Portland flagship store at 418 Alder Lane; choose 'Pick up in store' at checkout.",
                       "You can collect fuel at our Portland flagship, 418 Alder Lane — just select 'Pick up in store' at checkout."),
                article="KB-PCK-01",
            ),
        ),
    ),
    Topic(
        id="store-pickup",
        articles=("KB-PCK-01",),
        weight=0.9, angry_rate=0.08,
        situations=(
            "Can I pick up my order at your store?",
            "I chose store pickup for order {order}, when can I come?",
            "Where is your store?",
            "Can my husband pick up my order for me?",
            "I haven't gotten the ready-for-pickup email yet.",
            "What are your store hours?",
            "I can't make it to the store this week to pick up my {product}.",
        ),
        asks=("How does it work?", "What do I need to bring?", "Can you help?", "Let me know."),
        answers=(
            "Our flagship store is at 418 Alder Lane, Portland, OR, and pickup is free. You'll get a 'Ready for pickup' email, usually within 4 hours during opening hours (Mon-Sat 10 am to 7 pm, Sun 11 am to 5 pm). Bring your order number and a photo ID; someone else can collect it if you forward them the email and they bring their own ID. Orders are held for 7 days, after which they're cancelled and refunded.",
            "Store pickup is free at our Portland flagship, 418 Alder Lane. Wait for the 'Ready for pickup' email — it usually arrives within 4 hours during opening hours, which are Mon-Sat 10 am to 7 pm and Sun 11 am to 5 pm. Bring the order number and photo ID (or forward the email to whoever's collecting, and they bring their own ID). We hold orders for 7 days before cancelling and refunding them.",
        ),
        followups=(
            FollowUp(
                customer=("what happens if I can't make it within 7 days?", "And if I'm late picking it up?",
                          "can you hold it longer?"),
                agent=("After 7 days unclaimed orders are cancelled and refunded to your original payment method. If you need a little longer, just reply here and we'll see what we can do.",
                       "We hold orders for 7 days; after that they're cancelled and refunded. Let us know if you need a bit more time."),
                article="KB-PCK-01",
            ),
            FollowUp(
                customer=("can I return stuff at the store too?", "Can I bring a return with me when I pick up?"),
                agent=("Yes! In-store returns are welcome and there's no label fee — just bring the item and your order number.",
                       "Of course, you can return online orders in store with no label fee. Bring the order number."),
                article="KB-RET-02",
            ),
        ),
    ),
    Topic(
        id="invoice-request",
        articles=("KB-INV-01",),
        needs_order=True, weight=0.9, angry_rate=0.04,
        situations=(
            "I need an invoice for order {order} for my expense report.",
            "Can I get a VAT invoice with my company name?",
            "Where can I download a receipt for my purchase?",
            "I checked out as a guest and need an invoice.",
            "My invoice has the wrong company name on it.",
            "Can you send me a receipt for my order from last month?",
        ),
        asks=("Can you help?", "How do I get it?", "Could you send it over?", "Thanks!"),
        answers=(
            "Sure! If you have an account, go to Account > Orders and click 'Download invoice' to get a PDF. For guest orders, the invoice link is in your shipping confirmation email, or we can email it to you. EU business customers can add a company name and VAT ID at checkout, and we can reissue an invoice with a company name or VAT ID within 30 days of purchase.",
            "You can download a PDF invoice any time under Account > Orders > 'Download invoice'. Guest checkout? The link is in the shipping confirmation email — or we'll email it over. We can reissue invoices with a company name or VAT ID within 30 days of purchase (EU businesses can also add these at checkout).",
        ),
        followups=(
            FollowUp(
                customer=("it's been more than 30 days, can you still change it?", "What if it's older than a month?"),
                agent=("I'm sorry, we can only reissue invoices with a company name or VAT ID within 30 days of purchase. The original invoice remains valid as a receipt.",
                       "After 30 days we can't reissue it with company details, unfortunately, but the original invoice is still a valid receipt."),
                article="KB-INV-01",
            ),
        ),
    ),
    Topic(
        id="bulk-orders",
        articles=("KB-B2B-01",),
        kinds=("jacket", "backpack", "tent", "sleeping-bag"), weight=0.8, angry_rate=0.0,
        situations=(
            "We're a hiking club and want to buy 15 {kinds} for our members.",
            "Do you offer discounts for bulk orders?",
            "I run a summer camp and need about 40 {kinds}.",
            "Can my company set up a business account with invoicing?",
            "We're looking to outfit our search and rescue team with {kinds}, around 12 units.",
            "Is there a corporate discount if we order 25+ of the {product}?",
        ),
        asks=("What pricing can you offer?", "How does it work?", "Who do I talk to?", "Can you send a quote?"),
        answers=(
            f"Thanks for thinking of us! Bulk pricing starts at 10 units of the same item: 10% off for 10-24 units and 15% off for 25 or more. Request a quote at {SHOP}/business and our business team will reply within 2 business days. Approved business accounts can also pay by invoice on net-30 terms.",
            f"We'd love to help. For 10 or more units of the same item you get 10% off (10-24 units) or 15% off (25 or more). The quickest route is the quote form at {SHOP}/business — you'll have a quote within 2 business days. Business accounts, once approved, can pay by invoice on net-30 terms.",
        ),
        followups=(
            FollowUp(
                customer=("do you do custom logos?", "Can you embroider our logo?", "can we get them branded?"),
                agent=("We don't offer custom logos or embroidery at the moment, sorry — bulk orders are for our standard products.",
                       "Unfortunately no custom logos or embroidery for now; bulk pricing applies to our standard products."),
                article="KB-B2B-01",
            ),
            FollowUp(
                customer=("can we pay by invoice?", "Do you offer payment terms?", "can we get net 30?"),
                agent=(f"Yes, approved business accounts can pay by invoice on net-30 terms. You can apply when you request a quote at {SHOP}/business.",
                       f"Approved business accounts get net-30 invoicing; just mention it in the quote request at {SHOP}/business."),
                article="KB-B2B-01",
            ),
        ),
    ),
    Topic(
        id="rental-program",
        articles=("KB-RNT-01",),
        kinds=("tent", "backpack", "sleeping-bag"), weight=0.8, angry_rate=0.03,
        situations=(
            "Do you rent tents?",
            "I'm going on a backpacking trip next month, can I rent a {product} instead of buying?",
            "How does the gear rental work?",
            "How much does it cost to rent a {product} for a week?",
            "Can I rent a stove as well?",
            "I rented the {product} and want to buy it now.",
        ),
        asks=("How does it work?", "What does it cost?", "Can you explain?", "Any info would help."),
        answers=(
            "Yes! We rent tents, backpacks and sleeping bags (not stoves or footwear) within the US. Rentals last 3-14 days and start from $35 for 3 days. We deliver at least 1 day before your trip, with a prepaid return label included — just ship it back the day after your trip ends. Cleaning is included, and if you buy the same item within 30 days, we credit the rental fee.",
            "Our rental program covers tents, backpacks and sleeping bags (no stoves or footwear), US only. You can rent for 3-14 days, from $35 for 3 days. Gear arrives at least 1 day before the trip, with a prepaid return label — send it back the day after you're home. Cleaning's on us, and the rental fee is credited if you buy the same item within 30 days.",
        ),
        followups=(
            FollowUp(
                customer=("what if something breaks on the trip?", "What if I damage it?", "do I pay if it rips?"),
                agent=("Normal wear is expected and covered. Damage beyond normal wear is billed at the repair cost, and we always send you a quote first.",
                       "Normal wear is fine. If there's damage beyond that, we bill the repair cost — after sending you a quote."),
                article="KB-RNT-01",
            ),
            FollowUp(
                customer=("can I ship a rental to Canada?", "Is rental available in the EU?", "can you rent to Canada?"),
                agent=("Rentals are only available within the US at the moment, sorry.",
                       "For now, the rental program is US only."),
                article="KB-RNT-01",
            ),
        ),
    ),
    Topic(
        id="product-recall",
        articles=("KB-RCL-01",),
        kinds=("stove",), weight=0.8, angry_rate=0.15,
        situations=(
            "I got an email about a recall on the Emberline 2 Stove.",
            "I heard the Emberline 2 Stove was recalled.",
            "How do I check if my Emberline stove is part of the recall?",
            "My Emberline 2 smells like gas when I connect the canister.",
            "I bought an Emberline 2 last summer.",
            "Is the Emberline 2.1 safe? I'm worried after the recall news.",
        ),
        asks=("Is mine affected?", "What do I do?", "Should I stop using it?", "What are my options?"),
        answers=(
            f"Thanks for checking — safety first. Recall RC-2025-07 covers Emberline 2 Stoves with serial numbers starting EL2-25, sold between March 1 and September 30, 2025; the serial number is engraved on the underside of the stove's base. The fuel valve on those units may leak, so please stop using it immediately. Register at {SHOP}/recall for a free replacement (the Emberline 2.1, which is not affected) or a full refund — we send a prepaid return label, and no receipt is needed.",
            f"Please stop using the stove until you've checked it. Our recall RC-2025-07 applies to Emberline 2 Stoves whose serial number (engraved under the base) starts with EL2-25, sold March 1 - September 30, 2025, because the fuel valve may leak. Affected owners get a free Emberline 2.1 (not affected by the recall) or a full refund; register at {SHOP}/recall, and we'll send a prepaid return label. No receipt needed.",
        ),
        followups=(
            FollowUp(
                customer=("do I need my receipt?", "I don't have proof of purchase, is that ok?", "do I need the order number?"),
                agent=("No receipt is needed for the recall — the serial number is enough.",
                       "Not at all; for the recall we only need the serial number."),
                article="KB-RCL-01",
            ),
            FollowUp(
                customer=("mine starts with EL2-24, is that ok?", "the serial on mine is EL2-24-something",
                          "Mine says EL2-24. Affected?"),
                agent=("Only serial numbers starting with EL2-25 are affected, so your stove isn't part of the recall and is fine to use.",
                       "Good news: the recall only covers serials starting EL2-25, so yours isn't affected."),
                article="KB-RCL-01",
            ),
        ),
    ),
    Topic(
        id="review-moderation",
        articles=("KB-REV-01",),
        weight=0.7, angry_rate=0.3,
        situations=(
            "I left a review for the {product} a week ago and it never showed up.",
            "Why was my review deleted?",
            "Someone left a fake-looking review on the {product}.",
            "My review was rejected but it was honest.",
            "I want to edit the review I wrote for the {product}.",
            "There's a review on the {product} page with someone's phone number in it.",
        ),
        asks=("What's going on?", "How does that work?", "Can you check?", "Can you fix it?"),
        answers=(
            "Thanks for reaching out! Reviews are checked within 72 hours before they're published. We remove reviews that contain profanity, personal information, links, or content that isn't about the product itself (feedback about delivery or service goes to our support team instead). We publish negative reviews too. You can edit or delete your own reviews under Account > My reviews, and use the 'Report' link to flag a review.",
            "Every review is checked within 72 hours. It's published as long as it follows our guidelines — reviews with profanity, personal information, links, or that aren't about the product (e.g. shipping complaints, which we handle in support) are removed. Negative reviews are published just like positive ones. Your own reviews can be edited or deleted under Account > My reviews; to flag someone else's, use 'Report'.",
        ),
        followups=(
            FollowUp(
                customer=("so you just delete negative reviews?", "Are you censoring bad reviews?",
                          "sounds like you only keep the good ones"),
                agent=("Not at all — we publish negative reviews too, as long as they follow the guidelines. The most common reason for removal is a review about delivery or customer service rather than the product itself.",
                       "We don't remove reviews for being negative. Most removals are reviews about shipping or service instead of the product, and we handle those as support cases."),
                article="KB-REV-01",
            ),
        ),
    ),
    Topic(
        id="newsletter-unsubscribe",
        articles=("KB-EML-01",),
        weight=0.8, angry_rate=0.3,
        situations=(
            "Please stop sending me emails.",
            "I unsubscribed last week and I'm still getting your newsletters.",
            "How do I unsubscribe from your marketing emails?",
            "I get like 3 emails a day from you, it's too much.",
            "Take me off your mailing list.",
            "I want to keep order updates but stop the promo emails.",
        ),
        asks=("Thanks.", "How do I do that?", "Can you do it for me?", "Please sort this out."),
        answers=(
            "Sorry about the inbox overload! I've removed your address from our marketing list. For the future, every marketing email has an unsubscribe link at the bottom, and you can manage everything under Account > Email preferences. Changes take effect within 48 hours, and you'll still get order and shipping emails. If you'd rather hear from us less often, there's a weekly digest option too.",
            "Done — you've been unsubscribed from marketing emails. It can take up to 48 hours to take full effect, so one more might slip through. Order and shipping emails will still arrive. You can also use the unsubscribe link at the bottom of any marketing email or Account > Email preferences, where there's a weekly digest option if you'd like fewer emails instead of none.",
        ),
        followups=(
            FollowUp(
                customer=("will I still get shipping notifications?", "But I still want my order updates, right?",
                          "what about tracking emails?"),
                agent=("Yes — unsubscribing only affects marketing emails. Order and shipping emails are still sent.",
                       "Order and shipping emails aren't affected, so you'll keep getting those."),
                article="KB-EML-01",
            ),
        ),
    ),
    Topic(
        id="pre-order",
        articles=("KB-PRE-01",),
        needs_order=False, weight=0.9, angry_rate=0.12,
        situations=(
            "I pre-ordered the {product}, when will it ship?",
            "When will I be charged for my pre-order?",
            "I ordered a pre-order item and an in-stock item together, will I have to wait for both?",
            "The ship date on my pre-order {order} got pushed back.",
            "Can I cancel my pre-order?",
            "How do pre-orders work for the new {product}?",
        ),
        asks=("Can you explain?", "What happens now?", "How does that work?", "Please let me know."),
        answers=(
            "Here's how pre-orders work: the estimated ship date is on the product page and in your confirmation email, and your card is only charged when the item is packed. If your order also has in-stock items, those ship first at no extra shipping cost. You can cancel a pre-order any time before it's packed with the 'Cancel order' button, and if the date slips by more than 30 days we'll email you so you can decide whether to cancel or keep waiting.",
            "Good question! With pre-orders we charge your card only when the item is packed, and the estimated ship date is shown on the product page and in the confirmation email. In-stock items on the same order ship first, with no extra shipping cost. Cancelling is possible any time before it's packed ('Cancel order' button), and if the date moves by more than 30 days, you'll get an email letting you cancel or keep waiting.",
        ),
        followups=(
            FollowUp(
                customer=("it's been delayed twice now, can I cancel?", "ok I want to cancel it then",
                          "So I won't lose money if I cancel?"),
                agent=("Yes, you can cancel a pre-order any time before it's packed using the 'Cancel order' button on your order page — and since cards are only charged when the item is packed, you won't have paid anything yet.",
                       "You can, with the 'Cancel order' button, as long as it isn't packed yet. Nothing has been charged, because we only charge at packing."),
                article="KB-PRE-01",
            ),
        ),
    ),
)

TOPICS_BY_ID: dict[str, Topic] = {t.id: t for t in TOPICS}


# --------------------------------------------------------------------------
# Phrase banks shared by all topics (used by generate_corpus.py)
# --------------------------------------------------------------------------

EMAIL_GREETINGS = ("Hi,", "Hello,", "Hi there,", "Hello Juniper team,", "Dear Customer Service,", "Hey,",
                   "Good morning,", "", "", "To whom it may concern,", "Hi Juniper,")
EMAIL_CLOSINGS = ("Thanks,\n{first}", "Best,\n{first} {last}", "Cheers,\n{first}", "Thank you!\n{first}",
                  "{first}", "Regards,\n{first} {last}", "Thanks in advance,\n{first}", "", "Sent from my iPhone",
                  "Many thanks,\n{first} {last}")
CHAT_GREETINGS = ("hi", "hello", "hey", "Hi!", "Hello,", "", "", "", "hi there", "Hey there,", "Good afternoon.")
LOWERCASE_AFTER_FILLER = frozenset((
    "The", "My", "It", "It's", "Is", "How", "What", "Can", "Do", "Does", "When", "Where", "Why", "Any", "Got",
    "Just", "Please", "This", "That", "There's", "Tracking", "Checkout", "Payment", "Ordered", "Opened", "Still",
    "Code", "Box", "Order", "Your", "Changed", "Thinking", "Someone", "Trying", "Wrong", "Will", "Should",
))
PHONE_OPENERS = ("Hi, yeah, so ", "Hello, um, ", "Yeah, hi. ", "Hi there. So ", "Hi, ", "", "Hello, yes. ")
POLITE_EXTRAS = ("Thanks so much in advance!", "Really appreciate your help.", "Hope you're having a good day.",
                 "Sorry if this is a silly question.", "Thank you!")
TRIP_EXTRAS = ("I need it for a trip next weekend.", "We're leaving for a camping trip on {weekday}.",
               "First time ordering from you guys.", "I've ordered from you many times and never had an issue.",
               "It's a birthday present, so timing matters.")
ANGRY_PREFIXES = ("This is ridiculous.", "I'm honestly so frustrated right now.",
                  "Second time I'm contacting you about this!!", "Unbelievable.", "I am NOT happy.",
                  "Seriously, what is going on?")
ANGRY_SUFFIXES = ("I expect a real answer this time, not a copy-paste.", "Very disappointed.",
                  "This shouldn't be this hard.", "Please just sort it out!!")
ANGRY_PROBLEM_SUFFIXES = ("I want this fixed TODAY.", "If this isn't sorted I'm disputing the charge with my bank.",
                          "Never ordering from you again if this isn't fixed.", "I paid good money for this.")
ORDER_LINES = ("Order number is {order}.", "(order {order})", "Order #{order}.", "My order number: {order}",
               "It's order {order}.", "Ref: {order}")

PII_LINES = {
    "email": ("My email is {email}.", "You can reach me at {email}.", "The account email is {email} if that helps.",
              "(account: {email})", "Please reply to {email}, I don't check the other address."),
    "phone": ("Call me at {phone} if that's easier.", "My number is {phone}.", "You can text me on {phone}.",
              "Phone: {phone}", "Feel free to ring me on {phone}."),
    "card": ("I paid with my card {card}.", "The card I used is {card}, exp 08/27.",
             "It was on my card ending... actually the full number is {card}.", "Card on the order: {card}",
             "In case you need it, my card number is {card}."),
    "iban": ("Can you refund it straight to my bank account instead? IBAN {iban}",
             "My IBAN is {iban} if you need it for the refund.", "Please transfer the money to {iban}.",
             "Bank details for the refund: {iban}"),
}
PII_AGENT_NOTES = {
    "card": ("One quick note: please don't send full card numbers by email or chat — we never need them and will never ask for them.",
             "For your security, please avoid sharing card numbers with us; we never need them, and we'll never ask."),
    "iban": ("Refunds always go back to the original payment method, so we don't need your bank details — please don't send them over email or chat.",
             "Just so you know, we can't send refunds to a bank account: they always go to the original payment method, so there's no need to share bank details."),
}

AGENT_EMAIL_GREETINGS = ("Hi {first},", "Hello {first},", "Hi {first},", "Dear {first},")
AGENT_GENERIC_GREETINGS = ("Hi there,", "Hello,", "Hi,")
AGENT_EMAIL_OPENERS = ("Thanks for reaching out to Juniper Outfitters.", "Thanks for getting in touch!",
                       "Thank you for your message.", "", "")
AGENT_CHAT_GREETINGS = ("Hi {first}!", "Hi {first}, thanks for reaching out.", "Hello {first}!", "Hi there!",
                        "Hello!", "Thanks for waiting!", "")
AGENT_PHONE_WELCOME = ("Thank you for calling Juniper Outfitters, this is {agent}. How can I help you today?",
                       "Juniper Outfitters customer care, {agent} speaking — how can I help?",
                       "Hi, thanks for calling Juniper Outfitters. My name's {agent}, what can I do for you?")
AGENT_PHONE_PREFIXES = ("Okay, I can definitely help with that.", "Sure, let me explain how that works.",
                        "Got it, thanks.", "Absolutely.", "Alright.")
AGENT_PHONE_PROBLEM_PREFIXES = ("Okay, thanks for that.", "Alright, I've got it here.", "Okay.", "Got it.")
# Leading filler sentences of an answer that read oddly right after an apology for an angry customer.
FILLER_LEAD = re.compile(r"^(?:I'm (?:really )?sorry|Sorry|Oh no|Apologies|Good question|Great question|Happy to help"
                         r"|Of course|Sure thing|Thanks for [a-z ]+|No problem|Easy to sort out|Let's [a-z ]+"
                         r"|That's (?:our mistake|frustrating|not how it should arrive)|I understand [a-z ]+)"
                         r"[^.!?]{0,50}[.!]\s+")
ANGRY_EMPATHY = ("I'm really sorry about this — I completely understand your frustration.",
                 "I'm sorry for the trouble, and I understand why you're upset.",
                 "I hear you, and I apologize — this isn't the experience we want you to have.",
                 "Sorry about this — let's get it sorted right away.")
CITATIONS = ("You can find all the details in our help article {code}: {url}", "More info here: {url} ({code})",
             "Here's the full policy for reference: {title} ({code}) – {url}",
             "For reference, this is covered in {code}: {url}", "See {url} for the details.",
             "(Help article {code}: {url})", "Our help center has a step-by-step guide: {url}",
             "Details: {code} – {url}")
CITATIONS_TWO = ("More details in {code} ({url}) and {code2} ({url2}).",
                 "For reference: {code} – {url}, and {code2} – {url2}")
PHONE_CITATIONS = ("I'll also email you the help article for this, it's {code}.",
                   "You can read more on our help center, article {code}.",
                   "I'm sending you a link to article {code} right now.")
AGENT_OFFERS = ("Let me know if there's anything else I can do.", "If you have any other questions, just reply to this email.",
                "Anything else, just reply here.", "")
AGENT_SIGNATURES = ("Best,\n{agent}\nJuniper Outfitters Customer Care", "Kind regards,\n{agent}",
                    "Happy trails!\n{agent} | Juniper Outfitters", "Thanks,\n{agent} — Juniper Outfitters Support",
                    "All the best,\n{agent}")
CHAT_OFFERS = ("", "", "Anything else I can help with?", "Is there anything else I can do for you today?",
               "Let me know if you have any other questions!")
PHONE_OFFERS = ("Is there anything else I can help you with today?", "Anything else I can do for you?", "")
FOLLOWUP_PREFIXES = ("Good question!", "Happy to explain.", "Sure.")   # only used when the customer asked a question
PHONE_FOLLOWUP_PREFIXES = ("Okay.", "Right.", "Mm-hm.", "")

CLARIFY_ASKS = ("Happy to look into this! Could you send me your order number? It starts with JO- and you'll find it in your confirmation email.",
                "Sure — could you share the order number (it starts with JO-)?",
                "I can check that for you. What's your order number?",
                "Sorry to hear that. Could you send me the order number so I can take a look?")
PHONE_CLARIFY_ASKS = ("Sure, can I get your order number, please?",
                      "Of course. Could you give me the order number, or the email address on the account?",
                      "Let me pull that up. What's the order number?")
CLARIFY_REPLIES = ("{order}", "it's {order}", "sure, {order}", "Order number is {order}.", "oh sorry, {order}",
                   "here you go: {order}", "{order} thanks")
CUSTOMER_THANKS = ("great, thanks!", "Perfect, thank you so much.", "ok thx", "Thanks, that helps!",
                   "awesome, appreciate it", "Got it. Thanks for the quick reply.", "thank you!!", "ok cool")
ANGRY_THANKS = ("fine. thanks.", "ok. thanks I guess", "Alright.")
AGENT_WELCOME = ("You're welcome! Have a great day.", "Glad I could help. Happy trails!",
                 "Anytime — enjoy your time outdoors!", "My pleasure! Take care.")
UNHAPPY_REPLIES = ("That doesn't really help me.", "I already tried all of that!",
                   "this is not acceptable, I want to speak to a manager", "Not what I wanted to hear, honestly.",
                   "so basically you can't do anything?")
ESCALATIONS = (f"I understand, and I'm sorry. I've escalated your case to a senior member of our team, who will follow up by email {ESCALATION}.",
               f"I hear you. I've passed this to my team lead with all the details; you'll get an email from them {ESCALATION}.")

MISSPELLINGS = {
    "received": "recieved", "definitely": "definately", "separately": "seperately", "address": "adress",
    "tomorrow": "tommorow", "because": "becuase", "really": "realy", "package": "pacakge",
    "warranty": "warrenty", "business": "buisness", "until": "untill", "which": "wich",
    "anything": "anyting", "waterproof": "waterprof", "cancel": "cancle", "their": "thier",
}
SHOUT_WORDS = ("still", "never", "nothing", "again", "wrong", "broken", "today", "now", "late", "paid",
               "twice", "weeks", "not", "where", "no")


# --------------------------------------------------------------------------
# FAQ export (faq.csv) and out-of-scope questions
# --------------------------------------------------------------------------

FAQ_ROWS: tuple[tuple[str, str], ...] = (
    ("What is your return policy?", f"Unused items with original tags can be returned within 30 days of delivery (60 days for Juniper Trail Club members). Start at {SHOP}/returns. See KB-RET-01: {HELP_BASE}/returns-policy"),
    ("Is return shipping free?", "The prepaid US return label costs $6.95 and is deducted from your refund. It is free if the item is defective or we sent the wrong item. (KB-RET-01)"),
    ("How much is a return label from Canada or the EU?", "The prepaid return label from Canada or the EU costs $14.95, free for defective or wrong items. (KB-RET-01)"),
    ("Can I return items marked Final sale?", "No, items marked 'Final sale' cannot be returned. (KB-RET-01)"),
    ("Can I return an online order in your store?", "Yes, at our Portland flagship store (418 Alder Lane) with no label fee. Bring your order number. (KB-RET-02)"),
    ("How long does a refund take?", f"Refunds go to the original payment method within 5-7 business days after our warehouse receives the item. See KB-REF-01: {HELP_BASE}/refund-timelines"),
    ("How do I exchange an item for another size?", f"Start at {SHOP}/returns and choose 'Exchange'. The replacement ships free as soon as your return gets its first carrier scan; the $6.95 label fee applies unless the item is defective. (KB-RET-04)"),
    ("My item arrived damaged. What do I do?", "Send photos of the item and box within 14 days of delivery. We email a free return label and you choose a replacement or a full refund. (KB-RET-03)"),
    ("I received the wrong item.", "Report it within 14 days of delivery with a photo of the item and packing slip. We ship the correct item free by express (1-2 business days) and email a prepaid return label. (KB-ORD-03)"),
    ("An item is missing from my order.", "Check your shipping confirmation for items marked 'ships separately'. Otherwise we ship the missing item free by express (1-2 business days) if reported within 14 days of delivery. (KB-ORD-03)"),
    ("How do I track my order?", f"Use the tracking link in your shipping confirmation email or {SHOP}/track. New tracking numbers can take up to 24 hours to show the first scan. (KB-ORD-01)"),
    ("When will my order ship?", "Orders placed before 2 pm ET on a business day ship the same day. The warehouse ships Monday to Friday. (KB-ORD-01)"),
    ("My package is late.", "If tracking shows no movement for 5 business days, or the parcel is more than 5 business days late, we open a carrier trace. If it is lost we reship or refund at no cost. (KB-ORD-02)"),
    ("Tracking says delivered but I don't have my package.", "Carriers sometimes scan parcels as delivered up to 48 hours early. If it hasn't arrived after 48 hours, contact us and we open a claim, then reship or refund. (KB-ORD-02)"),
    ("Can I cancel my order?", "Only before it is packed, usually within 1 hour of ordering, using the 'Cancel order' button on your order page. (KB-ORD-04)"),
    ("When is my card charged?", "Cards are charged when the order is packed. Cancelled orders leave a pending authorization that your bank releases within 3-5 business days. (KB-ORD-04)"),
    ("Can I change my shipping address?", "Only before the order is packed (usually within 1 hour of ordering). After shipping, US customers can ask the carrier to redirect the parcel. (KB-ORD-05)"),
    ("How much does shipping cost?", "US standard shipping takes 3-5 business days and costs $6.95, free on orders over $75. Express takes 1-2 business days and costs $14.95. (KB-SHP-01)"),
    ("Do you ship internationally?", "We ship to the US, Canada and the 27 EU countries. Standard takes 6-10 business days for $19.95, free over $200; express takes 2-4 business days for $39.95. (KB-INT-01)"),
    ("Will I pay customs duties?", "No. Duties and taxes for Canada and the EU are charged at checkout. If a courier asks for fees, don't pay and contact us. (KB-INT-02)"),
    ("Can you ship fuel canisters?", "Fuel canisters ship by standard ground only, within the contiguous US only, never by express. They can be picked up at our Portland store. (KB-SHP-02)"),
    ("Which payment methods do you accept?", "Visa, Mastercard, American Express, Discover, PayPal, Apple Pay, Google Pay and Juniper gift cards. (KB-PAY-01)"),
    ("Why was my card declined?", "Usually a billing address or ZIP/postal code mismatch, a bank fraud filter, or an expired card or wrong security code. Pending authorizations from failed attempts are released within 3-5 business days. (KB-PAY-01)"),
    ("Can I use two promo codes?", "No, one promo code per order. Codes don't apply to gift cards or 'Final sale' items and cannot be added after the order is placed. (KB-PRO-01)"),
    ("Do you price match?", "Yes, within 14 days of purchase: our own price drops and identical in-stock items at authorized retailers in the US, Canada or EU. Marketplace sellers, clearance, bundles and flash sales are excluded. (KB-PRC-01)"),
    ("Do gift cards expire?", f"Never. Gift cards have no fees, and you can check the balance at {SHOP}/giftcard. (KB-GFT-01)"),
    ("What does the warranty cover?", f"All gear has a 2-year warranty from delivery against manufacturing defects. Claim at {SHOP}/warranty with your order number and photos. (KB-WAR-01)"),
    ("Do you repair gear?", f"Yes. Zipper replacement from $25, seam re-taping from $35, patches from $10, tent pole sections $15. Turnaround is 2-3 weeks. Start at {SHOP}/repairs. (KB-REP-01)"),
    ("How do I wash my rain jacket?", "Technical wash, gentle cycle at 30 °C / 86 °F, no fabric softener. Tumble dry on low for 20 minutes to reactivate the DWR finish. (KB-CARE-01)"),
    ("How do I clean my tent?", "Never machine wash or dry it. Sponge clean with mild soap and lukewarm water and dry it completely before storing. (KB-CARE-02)"),
    ("Do your hiking boots run true to size?", "Ridgeline Hiking Boots and Talus Mid GTX Boots run about half a size small, so order half a size up. Switchback Trail Runners are true to size. (KB-SIZ-02)"),
    ("When will a sold-out item be back?", "We can't share restock dates or hold items. Use 'Notify me' on the product page to get an email when it's back. (KB-STK-01)"),
    ("I forgot my password.", "Use 'Forgot password?' on the sign-in page. The reset link is valid for 60 minutes. After 5 failed attempts the account is locked for 30 minutes. (KB-ACC-01)"),
    ("How do I delete my account?", f"Submit a request at {SHOP}/privacy-request. It is completed within 30 days; order and tax records are kept for 7 years as required by law. (KB-PRV-01)"),
    ("What is the Juniper Trail Club?", "$49 per year: free standard shipping on every order, 60-day returns, 2 points per $1 and early access to sales. Full refund within 14 days if no benefits were used. (KB-CLB-01)"),
    ("How do loyalty points work?", "1 point per $1 spent (2 for Trail Club members). Points post 14 days after delivery; 100 points = $5 reward. Points expire after 12 months without account activity. (KB-LOY-01)"),
    ("Can I pick up my order in store?", "Yes, free at 418 Alder Lane, Portland, OR. You get a 'Ready for pickup' email usually within 4 hours during opening hours; orders are held for 7 days. (KB-PCK-01)"),
    ("How do I get an invoice?", "Account > Orders > 'Download invoice'. Invoices can be reissued with a company name or VAT ID within 30 days of purchase. (KB-INV-01)"),
    ("Do you offer bulk discounts?", f"10% off 10-24 units of the same item, 15% off 25 or more. Request a quote at {SHOP}/business; quotes within 2 business days. (KB-B2B-01)"),
    ("Can I rent gear?", "Yes, tents, backpacks and sleeping bags within the US, for 3-14 days, from $35 for 3 days. Prepaid return label included. (KB-RNT-01)"),
    ("Is my Emberline 2 Stove recalled?", f"Recall RC-2025-07 covers Emberline 2 Stoves with serial numbers starting EL2-25. Stop using it and register at {SHOP}/recall for a free replacement or full refund. (KB-RCL-01)"),
    ("How do I unsubscribe from emails?", "Use the unsubscribe link in any marketing email or Account > Email preferences. Changes take effect within 48 hours; order emails still arrive. (KB-EML-01)"),
    ("When am I charged for a pre-order?", "Only when the item is packed. In-stock items on the same order ship first at no extra cost. (KB-PRE-01)"),
)

# (category, question) — nothing in the logs answers these; the bot should hand off.
OUT_OF_SCOPE: tuple[tuple[str, str], ...] = (
    ("legal", "My landlord is keeping my deposit, can you tell me if I can sue him in small claims court?"),
    ("legal", "I slipped on a trail in a state park. Do I have a case against the park service?"),
    ("legal", "Is it legal to drone over a national park? Need an answer before my trip"),
    ("legal", "can you review my freelance contract and tell me if the non-compete clause is enforceable"),
    ("legal", "How do I trademark the name of my hiking blog?"),
    ("competitor", "What's the return policy at Evergreen Sports Depot? I bought a jacket there."),
    ("competitor", "Is Alpenglow Gear's membership better than yours? which one should I get honestly"),
    ("competitor", "Can you check the status of an order I placed with Basecamp Direct?"),
    ("competitor", "Why does Peak Provisions have a bigger selection of climbing ropes than you?"),
    ("not-sold", "Do you sell kayaks or paddle boards?"),
    ("not-sold", "I'm looking for an e-bike battery for my mountain bike, which one fits a 2019 model?"),
    ("not-sold", "Do you carry hunting rifles or ammunition?"),
    ("not-sold", "Can I buy fishing licenses through your website?"),
    ("not-sold", "Do you have ski bindings in stock? Need them mounted too"),
    ("not-sold", "Do you sell GPS satellite messengers with a subscription plan?"),
    ("not-sold", "I need a replacement screen for my smartwatch, do you do those?"),
    ("jobs", "Hi, are you hiring warehouse staff in Portland? How do I apply?"),
    ("jobs", "I'd like to apply for a summer internship in your marketing team. Who should I send my CV to?"),
    ("jobs", "what's the salary for a customer service rep at your company"),
    ("weather", "What's the weather going to be like in Yosemite this weekend?"),
    ("weather", "Will it snow on Mount Hood next Tuesday?"),
    ("trail-info", "Is the Half Dome cable route open right now?"),
    ("trail-info", "Can you recommend a 3-day hike near Moab with water sources?"),
    ("trail-info", "Do I need a permit for camping in the Enchantments?"),
    ("medical", "I think I have a blister infection after my hike, should I see a doctor?"),
    ("medical", "What should I do if I get bitten by a rattlesnake?"),
    ("medical", "my kid has a peanut allergy, which trail snacks are safe?"),
    ("travel", "Do I need a visa to go hiking in Patagonia with a US passport?"),
    ("travel", "Which airline lets me bring a camping stove in my carry-on?"),
    ("finance", "What's Juniper Outfitters' stock price and are you planning an IPO?"),
    ("finance", "Should I invest in outdoor companies this year?"),
    ("partnership", "I'm an influencer with 200k followers, would you sponsor my van life channel?"),
    ("partnership", "Can we open a Juniper Outfitters franchise in Denver?"),
    ("donation", "Could you donate a tent for our school's raffle fundraiser?"),
    ("homework", "Can you write a 500 word essay about Leave No Trace principles for my class?"),
    ("homework", "Translate this paragraph into Japanese for me please: 'The mountains are calling and I must go.'"),
    ("unrelated", "How do I fix the check engine light on my Subaru?"),
    ("unrelated", "What's a good recipe for campfire chili for 12 people?"),
    ("unrelated", "can you recommend a good dentist in Portland"),
    ("unrelated", "Who won the Super Bowl last year?"),
    ("unrelated", "Tell me a joke about bears."),
    ("unrelated", "How many calories do I burn hiking 10 miles with a 30 lb pack?"),
)
