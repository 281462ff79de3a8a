//! The two demo tenants seeded by `stonepot serve --demo`.

use crate::finance::{Account, Book, Client, Product, Transaction};
use crate::menu::{Item, Menu, Modifier, ModifierGroup, Section};
use crate::{Category, Currency, Tenant, TenantId, Theme};

/// Id of the demo restaurant.
pub const RESTAURANT_ID: &str = "demo-restaurant";
/// Id of the demo financial advisory desk.
pub const FINANCE_ID: &str = "demo-finance";

fn tenant_id(s: &str) -> TenantId {
    // The constants above are valid ids; a failure here is a programming error caught by tests.
    TenantId::new(s).unwrap_or_else(|_| TenantId::new("invalid").unwrap_or_else(|_| unreachable!()))
}

/// The demo restaurant tenant ("Stonepot Trattoria").
pub fn restaurant_tenant() -> Tenant {
    Tenant {
        id: tenant_id(RESTAURANT_ID),
        name: "Stonepot Trattoria".into(),
        category: Category::Restaurant,
        currency: Currency::USD,
        timezone: "America/New_York".into(),
        theme: Theme {
            primary: "#b3261e".into(),
            secondary: "#3e2723".into(),
            background: "#fbf6ee".into(),
            surface: "#ffffff".into(),
            text: "#2b1d16".into(),
            muted: "#7a6a5f".into(),
            accent: "#2e7d32".into(),
            font_heading: "Georgia, 'Palatino Linotype', serif".into(),
            font_body: "'Trebuchet MS', system-ui, sans-serif".into(),
            radius: 16,
            logo_url: None,
            layout: "grid".into(),
        },
    }
}

/// The demo financial advisory tenant ("Stonepot Wealth Desk").
pub fn finance_tenant() -> Tenant {
    Tenant {
        id: tenant_id(FINANCE_ID),
        name: "Stonepot Wealth Desk".into(),
        category: Category::Financial,
        currency: Currency::USD,
        timezone: "America/New_York".into(),
        theme: Theme {
            primary: "#0b3d91".into(),
            secondary: "#0a1f44".into(),
            background: "#f3f6fb".into(),
            surface: "#ffffff".into(),
            text: "#0f1a2a".into(),
            muted: "#5b6b82".into(),
            accent: "#0f9d58".into(),
            font_heading: "'Helvetica Neue', Arial, sans-serif".into(),
            font_body: "'Helvetica Neue', Arial, sans-serif".into(),
            radius: 8,
            logo_url: None,
            layout: "list".into(),
        },
    }
}

fn m(id: &str, name: &str, delta: i64, default: bool) -> Modifier {
    Modifier {
        id: id.into(),
        name: name.into(),
        price_delta: delta,
        default,
    }
}

fn size_group(prefix: &str, large_delta: i64) -> ModifierGroup {
    ModifierGroup {
        id: format!("{prefix}-size"),
        name: "Size".into(),
        min: 1,
        max: 1,
        modifiers: vec![
            m(&format!("{prefix}-regular"), "Regular", 0, true),
            m(&format!("{prefix}-large"), "Large", large_delta, false),
        ],
    }
}

struct Dish<'a> {
    id: &'a str,
    section: &'a str,
    name: &'a str,
    description: &'a str,
    price: i64,
    dietary: &'a [&'a str],
    allergens: &'a [&'a str],
    aliases: &'a [&'a str],
}

fn item(d: Dish<'_>, groups: Vec<ModifierGroup>) -> Item {
    let strs = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    Item {
        id: d.id.into(),
        section_id: d.section.into(),
        name: d.name.into(),
        description: d.description.into(),
        price: d.price,
        dietary: strs(d.dietary),
        allergens: strs(d.allergens),
        aliases: strs(d.aliases),
        available: true,
        image_url: None,
        modifier_groups: groups,
    }
}

/// The demo restaurant's menu: 21 dishes in six sections, one of them 86'd.
pub fn restaurant_menu() -> Menu {
    let sections = [
        ("starters", "Starters"),
        ("pizzas", "Pizzas"),
        ("pasta", "Pasta"),
        ("salads", "Salads"),
        ("desserts", "Desserts"),
        ("drinks", "Drinks"),
    ]
    .iter()
    .zip(0..)
    .map(|((id, name), position)| Section {
        id: (*id).into(),
        name: (*name).into(),
        position,
    })
    .collect();

    let pizza_toppings = |p: &str| ModifierGroup {
        id: format!("{p}-toppings"),
        name: "Toppings".into(),
        min: 0,
        max: 3,
        modifiers: vec![
            m(&format!("{p}-extra-cheese"), "Extra cheese", 200, false),
            m(&format!("{p}-mushrooms"), "Mushrooms", 150, false),
            m(&format!("{p}-olives"), "Olives", 100, false),
            m(&format!("{p}-chili"), "Chili flakes", 0, false),
        ],
    };

    let mut items = vec![
        item(
            Dish {
                id: "garlic-bread",
                section: "starters",
                name: "Garlic Bread",
                description: "Toasted ciabatta, garlic butter, parsley",
                price: 650,
                dietary: &["vegetarian"],
                allergens: &["gluten", "milk"],
                aliases: &["garlic toast"],
            },
            vec![ModifierGroup {
                id: "garlic-bread-cheese".into(),
                name: "Cheese".into(),
                min: 0,
                max: 1,
                modifiers: vec![m("garlic-bread-with-cheese", "With mozzarella", 150, false)],
            }],
        ),
        item(
            Dish {
                id: "bruschetta",
                section: "starters",
                name: "Bruschetta",
                description: "Tomato, basil and olive oil on grilled bread",
                price: 850,
                dietary: &["vegetarian", "vegan", "dairy_free"],
                allergens: &["gluten"],
                aliases: &[],
            },
            vec![],
        ),
        item(
            Dish {
                id: "calamari",
                section: "starters",
                name: "Fried Calamari",
                description: "Crispy squid, lemon aioli",
                price: 1350,
                dietary: &[],
                allergens: &["molluscs", "gluten", "eggs"],
                aliases: &["calamari", "squid"],
            },
            vec![],
        ),
        item(
            Dish {
                id: "arancini",
                section: "starters",
                name: "Arancini",
                description: "Saffron risotto balls with mozzarella",
                price: 1050,
                dietary: &["vegetarian"],
                allergens: &["gluten", "milk", "eggs"],
                aliases: &["rice balls"],
            },
            vec![],
        ),
        item(
            Dish {
                id: "margherita",
                section: "pizzas",
                name: "Margherita Pizza",
                description: "Classic pizza: San Marzano tomato, fior di latte, fresh basil",
                price: 1299,
                dietary: &["vegetarian"],
                allergens: &["gluten", "milk"],
                aliases: &["margherita", "margarita", "margarita pizza", "cheese pizza"],
            },
            vec![
                size_group("margherita", 400),
                ModifierGroup {
                    id: "margherita-basil".into(),
                    name: "Basil".into(),
                    min: 0,
                    max: 1,
                    modifiers: vec![
                        m("margherita-no-basil", "No basil", 0, false),
                        m("margherita-extra-basil", "Extra basil", 50, false),
                    ],
                },
                pizza_toppings("margherita"),
            ],
        ),
        item(
            Dish {
                id: "pepperoni",
                section: "pizzas",
                name: "Pepperoni Pizza",
                description: "Tomato, mozzarella, spicy pepperoni",
                price: 1499,
                dietary: &["spicy"],
                allergens: &["gluten", "milk"],
                aliases: &["pepperoni"],
            },
            vec![size_group("pepperoni", 400), pizza_toppings("pepperoni")],
        ),
        item(
            Dish {
                id: "quattro-formaggi",
                section: "pizzas",
                name: "Quattro Formaggi",
                description: "Mozzarella, gorgonzola, fontina, parmesan",
                price: 1599,
                dietary: &["vegetarian"],
                allergens: &["gluten", "milk"],
                aliases: &["four cheese pizza", "four cheese"],
            },
            vec![size_group("quattro-formaggi", 400)],
        ),
        item(
            Dish {
                id: "diavola",
                section: "pizzas",
                name: "Diavola",
                description: "Spicy salami, chili, tomato, mozzarella",
                price: 1549,
                dietary: &["spicy"],
                allergens: &["gluten", "milk"],
                aliases: &["spicy pizza"],
            },
            vec![size_group("diavola", 400), pizza_toppings("diavola")],
        ),
        item(
            Dish {
                id: "funghi",
                section: "pizzas",
                name: "Funghi Pizza",
                description: "Wild mushrooms, thyme, mozzarella",
                price: 1449,
                dietary: &["vegetarian"],
                allergens: &["gluten", "milk"],
                aliases: &["mushroom pizza"],
            },
            vec![size_group("funghi", 400)],
        ),
        item(
            Dish {
                id: "spaghetti-carbonara",
                section: "pasta",
                name: "Spaghetti Carbonara",
                description: "Guanciale, egg yolk, pecorino, black pepper",
                price: 1650,
                dietary: &[],
                allergens: &["gluten", "eggs", "milk"],
                aliases: &["carbonara"],
            },
            vec![ModifierGroup {
                id: "carbonara-pasta".into(),
                name: "Pasta".into(),
                min: 0,
                max: 1,
                modifiers: vec![m("carbonara-gluten-free", "Gluten-free pasta", 200, false)],
            }],
        ),
        item(
            Dish {
                id: "penne-arrabbiata",
                section: "pasta",
                name: "Penne Arrabbiata",
                description: "Tomato, garlic, chili",
                price: 1395,
                dietary: &["vegetarian", "vegan", "spicy", "dairy_free"],
                allergens: &["gluten"],
                aliases: &["arrabbiata", "arrabiata"],
            },
            vec![],
        ),
        item(
            Dish {
                id: "lasagna",
                section: "pasta",
                name: "Lasagna",
                description: "Slow-cooked beef ragu, bechamel, parmesan",
                price: 1795,
                dietary: &[],
                allergens: &["gluten", "milk", "eggs", "celery"],
                aliases: &["lasagne"],
            },
            vec![],
        ),
        item(
            Dish {
                id: "pesto-gnocchi",
                section: "pasta",
                name: "Pesto Gnocchi",
                description: "Potato gnocchi, basil pesto, pine nuts",
                price: 1595,
                dietary: &["vegetarian"],
                allergens: &["milk", "tree_nuts", "gluten"],
                aliases: &["gnocchi"],
            },
            vec![],
        ),
        item(
            Dish {
                id: "caesar-salad",
                section: "salads",
                name: "Caesar Salad",
                description: "Romaine, parmesan, croutons, anchovy dressing",
                price: 1150,
                dietary: &[],
                allergens: &["gluten", "milk", "eggs", "fish"],
                aliases: &["caesar"],
            },
            vec![ModifierGroup {
                id: "caesar-protein".into(),
                name: "Add protein".into(),
                min: 0,
                max: 1,
                modifiers: vec![
                    m("caesar-chicken", "Grilled chicken", 450, false),
                    m("caesar-shrimp", "Shrimp", 600, false),
                ],
            }],
        ),
        item(
            Dish {
                id: "caprese",
                section: "salads",
                name: "Caprese Salad",
                description: "Buffalo mozzarella, heirloom tomato, basil",
                price: 1250,
                dietary: &["vegetarian", "gluten_free"],
                allergens: &["milk"],
                aliases: &["caprese"],
            },
            vec![],
        ),
        item(
            Dish {
                id: "tiramisu",
                section: "desserts",
                name: "Tiramisu",
                description: "Espresso-soaked savoiardi, mascarpone, cocoa",
                price: 895,
                dietary: &["vegetarian"],
                allergens: &["gluten", "eggs", "milk"],
                aliases: &[],
            },
            vec![],
        ),
        item(
            Dish {
                id: "panna-cotta",
                section: "desserts",
                name: "Panna Cotta",
                description: "Vanilla cream, berry compote",
                price: 795,
                dietary: &["vegetarian", "gluten_free"],
                allergens: &["milk"],
                aliases: &[],
            },
            vec![],
        ),
        item(
            Dish {
                id: "gelato",
                section: "desserts",
                name: "Gelato",
                description: "Two scoops",
                price: 650,
                dietary: &["vegetarian", "gluten_free"],
                allergens: &["milk"],
                aliases: &["ice cream"],
            },
            vec![ModifierGroup {
                id: "gelato-flavors".into(),
                name: "Flavors".into(),
                min: 1,
                max: 2,
                modifiers: vec![
                    m("gelato-pistachio", "Pistachio", 0, false),
                    m("gelato-chocolate", "Chocolate", 0, true),
                    m("gelato-stracciatella", "Stracciatella", 0, false),
                ],
            }],
        ),
        item(
            Dish {
                id: "sparkling-water",
                section: "drinks",
                name: "Sparkling Water",
                description: "San Pellegrino 500 ml",
                price: 395,
                dietary: &["vegan", "gluten_free", "dairy_free"],
                allergens: &[],
                aliases: &["pellegrino", "fizzy water"],
            },
            vec![],
        ),
        item(
            Dish {
                id: "lemonade",
                section: "drinks",
                name: "House Lemonade",
                description: "Fresh lemons, mint",
                price: 495,
                dietary: &["vegan", "gluten_free", "dairy_free"],
                allergens: &[],
                aliases: &["lemonade"],
            },
            vec![size_group("lemonade", 150)],
        ),
        item(
            Dish {
                id: "espresso",
                section: "drinks",
                name: "Espresso",
                description: "Double shot",
                price: 350,
                dietary: &["vegan", "gluten_free", "dairy_free"],
                allergens: &[],
                aliases: &["coffee"],
            },
            vec![],
        ),
    ];
    // The truffle special is 86'd for the day: the demo shows how unavailable items behave.
    let mut truffle = item(
        Dish {
            id: "truffle-pizza",
            section: "pizzas",
            name: "Truffle Pizza",
            description: "Black truffle, fontina, wild mushrooms",
            price: 2495,
            dietary: &["vegetarian"],
            allergens: &["gluten", "milk"],
            aliases: &["truffle"],
        },
        vec![size_group("truffle-pizza", 500)],
    );
    truffle.available = false;
    items.push(truffle);
    Menu { sections, items }
}

fn client(id: &str, name: &str, risk: &str) -> Client {
    Client {
        id: id.into(),
        name: name.into(),
        risk_profile: risk.into(),
    }
}

fn account(id: &str, client: &str, kind: &str, name: &str, balance: i64) -> Account {
    Account {
        id: id.into(),
        client_id: client.into(),
        kind: kind.into(),
        name: name.into(),
        balance,
        currency: "USD".into(),
    }
}

fn txn(id: &str, acct: &str, date: &str, desc: &str, amount: i64, cat: &str) -> Transaction {
    Transaction {
        id: id.into(),
        account_id: acct.into(),
        date: date.into(),
        description: desc.into(),
        amount,
        category: cat.into(),
    }
}

fn product(
    id: &str,
    name: &str,
    kind: &str,
    (rate, fee, min): (i64, i64, i64),
    risk: &str,
    liq: &str,
) -> Product {
    Product {
        id: id.into(),
        name: name.into(),
        kind: kind.into(),
        rate_bps: rate,
        fee_bps: fee,
        minimum: min,
        risk: risk.into(),
        liquidity: liq.into(),
    }
}

/// The demo advisory desk's sample clients, accounts, transactions and products.
pub fn finance_book() -> Book {
    Book {
        clients: vec![
            client("c-ada", "Ada Lovelace", "balanced"),
            client("c-grace", "Grace Hopper", "conservative"),
            client("c-alan", "Alan Turing", "growth"),
        ],
        accounts: vec![
            account(
                "a-ada-chk",
                "c-ada",
                "checking",
                "Everyday Checking",
                482_317,
            ),
            account(
                "a-ada-sav",
                "c-ada",
                "savings",
                "High-Yield Savings",
                2_150_000,
            ),
            account("a-ada-ira", "c-ada", "retirement", "Roth IRA", 8_734_512),
            account(
                "a-grace-chk",
                "c-grace",
                "checking",
                "Everyday Checking",
                129_840,
            ),
            account(
                "a-grace-sav",
                "c-grace",
                "savings",
                "Emergency Fund",
                3_500_000,
            ),
            account(
                "a-alan-chk",
                "c-alan",
                "checking",
                "Everyday Checking",
                61_205,
            ),
            account(
                "a-alan-brk",
                "c-alan",
                "brokerage",
                "Individual Brokerage",
                15_408_877,
            ),
        ],
        transactions: vec![
            txn(
                "t1",
                "a-ada-chk",
                "2026-11-02",
                "Payroll deposit",
                610_000,
                "income",
            ),
            txn("t2", "a-ada-chk", "2026-11-03", "Rent", -245_000, "housing"),
            txn(
                "t3",
                "a-ada-chk",
                "2026-11-05",
                "Grocer",
                -12_744,
                "groceries",
            ),
            txn(
                "t4",
                "a-ada-chk",
                "2026-11-09",
                "Transfer to savings",
                -100_000,
                "transfer",
            ),
            txn(
                "t5",
                "a-ada-sav",
                "2026-11-09",
                "Transfer from checking",
                100_000,
                "transfer",
            ),
            txn(
                "t6",
                "a-ada-sav",
                "2026-11-30",
                "Interest",
                7_612,
                "interest",
            ),
            txn(
                "t7",
                "a-grace-chk",
                "2026-11-01",
                "Pension",
                380_000,
                "income",
            ),
            txn(
                "t8",
                "a-grace-chk",
                "2026-11-04",
                "Utilities",
                -18_233,
                "utilities",
            ),
            txn(
                "t9",
                "a-grace-chk",
                "2026-11-12",
                "Pharmacy",
                -4_518,
                "health",
            ),
            txn(
                "t10",
                "a-alan-brk",
                "2026-11-06",
                "Buy VTI x 20",
                -5_731_400,
                "investment",
            ),
            txn(
                "t11",
                "a-alan-brk",
                "2026-11-20",
                "Dividend VTI",
                18_960,
                "dividend",
            ),
            txn(
                "t12",
                "a-alan-chk",
                "2026-11-15",
                "Bookshop",
                -6_499,
                "shopping",
            ),
        ],
        products: vec![
            product(
                "p-hys",
                "High-Yield Savings",
                "savings",
                (410, 0, 0),
                "low",
                "same day",
            ),
            product(
                "p-cd12",
                "12-Month CD",
                "cd",
                (465, 0, 100_000),
                "low",
                "12 months",
            ),
            product(
                "p-cd36",
                "36-Month CD",
                "cd",
                (425, 0, 100_000),
                "low",
                "36 months",
            ),
            product(
                "p-idx",
                "Total Market Index Fund",
                "fund",
                (700, 3, 300_000),
                "medium",
                "2 days",
            ),
            product(
                "p-bond",
                "Aggregate Bond Fund",
                "fund",
                (450, 5, 300_000),
                "low",
                "2 days",
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_menu_is_valid_and_complete() {
        let menu = restaurant_menu();
        assert_eq!(menu.validate(), Ok(()));
        assert!(menu.items.len() >= 20);
        let margherita = menu.items.iter().find(|i| i.name == "Margherita Pizza");
        let basil = margherita.map(|i| {
            i.modifier_groups
                .iter()
                .any(|g| g.modifiers.iter().any(|m| m.name == "No basil"))
        });
        assert_eq!(basil, Some(true));
        assert_eq!(menu.items.iter().filter(|i| !i.available).count(), 1);
    }

    #[test]
    fn demo_tenants_have_valid_themes() {
        assert_eq!(restaurant_tenant().theme.validate(), Ok(()));
        assert_eq!(finance_tenant().theme.validate(), Ok(()));
        assert_eq!(restaurant_tenant().id.as_str(), RESTAURANT_ID);
        assert_eq!(finance_tenant().id.as_str(), FINANCE_ID);
    }

    #[test]
    fn demo_book_links_up() {
        let book = finance_book();
        for a in &book.accounts {
            assert!(book.clients.iter().any(|c| c.id == a.client_id));
        }
        for t in &book.transactions {
            assert!(book.accounts.iter().any(|a| a.id == t.account_id));
        }
    }
}
