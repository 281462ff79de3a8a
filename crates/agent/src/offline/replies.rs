//! The offline agent's words: short, friendly, and only what the tool results say
//! (prices and names come from the results, never from the plan).

use super::text::key;
use super::{Ask, Note, Plan, Purpose};
use crate::tools::{ToolOutcome, Workspace};
use serde_json::Value;
use stonepot_domain::Currency;
use stonepot_domain::menu::{Item, Menu};

/// "12.99 USD" → "$12.99" for the common currencies; other codes stay as they are.
fn money(text: &str) -> String {
    let Some((amount, code)) = text.rsplit_once(' ') else {
        return text.to_string();
    };
    let (sign, amount) = match amount.strip_prefix('-') {
        Some(a) => ("-", a),
        None => ("", amount),
    };
    let amount = grouped(amount);
    match code {
        "USD" | "CAD" | "AUD" | "NZD" | "SGD" | "HKD" | "MXN" => format!("{sign}${amount}"),
        "EUR" => format!("{sign}€{amount}"),
        "GBP" => format!("{sign}£{amount}"),
        _ => format!("{sign}{amount} {code}"),
    }
}

/// "154700.82" → "154,700.82".
fn grouped(amount: &str) -> String {
    let (int, frac) = match amount.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (amount, None),
    };
    if !int.bytes().all(|b| b.is_ascii_digit()) {
        return amount.to_string();
    }
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

fn str_of<'v>(v: &'v Value, field: &str) -> &'v str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// "a, b and c".
fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn qty_name(quantity: u64, name: &str, modifiers: &[String]) -> String {
    let base = format!("{quantity} × {name}");
    if modifiers.is_empty() {
        base
    } else {
        format!("{base} ({})", modifiers.join(", "))
    }
}

fn is_default(menu: &Menu, item_id: &str, modifier: &str) -> bool {
    menu.item(item_id).is_some_and(|i| {
        i.modifier_groups
            .iter()
            .any(|g| g.modifiers.iter().any(|m| m.name == modifier && m.default))
    })
}

/// A cart line from a tool result, with the options that differ from the defaults.
fn line_text(menu: &Menu, line: &Value) -> String {
    let item_id = str_of(line, "item_id");
    let mods: Vec<String> = line
        .get("modifiers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|m| !is_default(menu, item_id, m))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let q = line.get("quantity").and_then(Value::as_u64).unwrap_or(1);
    qty_name(q, str_of(line, "item"), &mods)
}

fn error_message(outcome: &ToolOutcome) -> String {
    outcome
        .result
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("that didn't work")
        .to_string()
}

fn error_code(outcome: &ToolOutcome) -> &str {
    outcome
        .result
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// An available dish like `item`: same section, most words and tags in common.
fn alternative<'m>(menu: &'m Menu, item: &Item) -> Option<&'m Item> {
    let words = |i: &Item| -> Vec<String> {
        i.description
            .split(|c: char| !c.is_alphanumeric())
            .chain(i.name.split_whitespace())
            .filter(|w| w.len() > 3)
            .map(|w| key(&w.to_lowercase()))
            .collect()
    };
    let mine = words(item);
    menu.items
        .iter()
        .filter(|i| i.available && i.id != item.id && i.section_id == item.section_id)
        .max_by_key(|i| {
            let shared = words(i).iter().filter(|w| mine.contains(w)).count();
            let tags = i
                .dietary
                .iter()
                .filter(|d| item.dietary.contains(d))
                .count();
            (
                shared * 2 + tags,
                std::cmp::Reverse(i.price.abs_diff(item.price)),
            )
        })
}

fn unavailable(menu: &Menu, cur: Currency, name: &str) -> String {
    let mut s = format!("Sorry, the {name} isn't available today.");
    if let Some(item) = menu.items.iter().find(|i| i.name == name)
        && let Some(alt) = alternative(menu, item)
    {
        s.push_str(&format!(
            " How about the {} instead ({})?",
            alt.name,
            price(cur, alt.price)
        ));
    }
    s
}

fn price(cur: Currency, minor: i64) -> String {
    money(&format!("{} {}", cur.format_minor(minor), cur.code()))
}

pub(super) fn write(ws: &Workspace, plan: &Plan, outcomes: &[ToolOutcome]) -> String {
    match ws {
        Workspace::Restaurant { menu, currency, .. } => restaurant(menu, *currency, plan, outcomes),
        Workspace::Financial { .. } => financial(plan, outcomes),
    }
}

fn restaurant(menu: &Menu, cur: Currency, plan: &Plan, outcomes: &[ToolOutcome]) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut added: Vec<String> = Vec::new();
    let mut changed: Vec<String> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    let mut cart_after: Option<&Value> = None;
    let mut read_back = false;
    for (purpose, outcome) in plan.purposes.iter().zip(outcomes) {
        let r = &outcome.result;
        if !outcome.ok {
            let item = match purpose {
                Purpose::Add { item, .. }
                | Purpose::SetQuantity { item, .. }
                | Purpose::ChangeOptions { item }
                | Purpose::Remove { item } => item.clone(),
                _ => String::new(),
            };
            if error_code(outcome) == "unavailable" {
                said.push(unavailable(menu, cur, &item));
            } else if let Some(fresh) = outcome
                .result
                .get("error")
                .and_then(|e| e.get("freshQuote"))
                .and_then(|q| q.get("readBack"))
                .and_then(Value::as_str)
            {
                // A stale confirmation: something changed since the guest heard the
                // quote, so the new one is read instead.
                said.push(format!(
                    "Something changed since I read that back ({}). Here it is again: {fresh}",
                    error_message(outcome)
                ));
                read_back = true;
            } else {
                said.push(format!("Sorry — {}.", error_message(outcome)));
            }
            continue;
        }
        match purpose {
            Purpose::Add {
                item,
                quantity,
                modifiers,
            } => {
                added.push(qty_name(u64::from(*quantity), item, modifiers));
                cart_after = Some(r);
            }
            Purpose::SetQuantity { item, quantity } => {
                changed.push(format!("{quantity} × {item}"));
                cart_after = Some(r);
            }
            Purpose::ChangeOptions { item } => {
                let id = str_of(r, "updated");
                let line = r
                    .get("lines")
                    .and_then(Value::as_array)
                    .and_then(|ls| ls.iter().find(|l| str_of(l, "line_id") == id));
                changed.push(line.map_or_else(|| item.clone(), |l| line_text(menu, l)));
                cart_after = Some(r);
            }
            Purpose::Remove { item } => {
                if !removed.contains(item) {
                    removed.push(item.clone());
                }
                cart_after = Some(r);
            }
            Purpose::Clear => {
                said.push("Done — your order is empty now. What would you like?".into());
                cart_after = None;
            }
            Purpose::ReadBack { done } => {
                read_back = true;
                said.push(read_back_text(menu, r, *done));
            }
            Purpose::Quote => {
                read_back = true;
                said.push(str_of(r, "readBack").to_string());
            }
            Purpose::Confirm => {
                read_back = true;
                let number = r
                    .get("ticket")
                    .and_then(Value::as_i64)
                    .map(|n| format!(" Your number is {n}."))
                    .unwrap_or_default();
                said.push(format!(
                    "Your order is placed.{number} {}",
                    match str_of(r, "note") {
                        "" => "Thank you!",
                        note => note,
                    }
                ));
            }
            Purpose::Search {
                topic,
                recommend,
                which,
            } => said.push(search_text(menu, r, topic, *recommend, *which)),
            Purpose::Dish { ask, option } => said.push(dish_text(menu, cur, r, ask, option)),
            Purpose::Accounts | Purpose::Transactions | Purpose::Compare => {}
        }
    }
    let mut out: Vec<String> = Vec::new();
    for n in &plan.notes {
        if let Note::Greeting = n {
            out.push("Hi! What can I get you today?".into());
        }
    }
    if !removed.is_empty() {
        out.push(format!("Removed the {}.", join(&removed)));
    }
    if !added.is_empty() {
        out.push(format!("Added {}.", join(&added)));
    }
    if !changed.is_empty() {
        out.push(format!("Now you have {}.", join(&changed)));
    }
    out.extend(said);
    for n in &plan.notes {
        match n {
            Note::Greeting => {}
            Note::Thanks => out.push("You're welcome!".into()),
            Note::Confirmed => {
                out.push("Great, thank you! Let me know if you'd like anything else.".into())
            }
            Note::Help => out.push(help(menu)),
            Note::OffTopic => out.push(
                "I can help with the menu and your order — a member of staff can answer that one."
                    .into(),
            ),
            Note::NotOnMenu(w) => out.push(format!("Sorry, we don't have {w} on the menu.")),
            Note::NotInCart(n) => out.push(format!("There's no {n} in your order.")),
            Note::WhichOne(names) => out.push(format!(
                "Which one do you mean: {}?",
                join(&names.iter().map(|n| format!("the {n}")).collect::<Vec<_>>())
                    .replace(" and the ", " or the ")
            )),
            Note::NothingToChange => {
                out.push("There's nothing in your order to change yet.".into());
            }
            Note::QuoteWaiting => out.push(
                "Your order isn't placed yet — say yes to place it, or tell me what to change."
                    .into(),
            ),
            Note::WhichClient(_) => {}
        }
    }
    if let Some(cart) = cart_after
        && !read_back
    {
        let n = cart.get("item_count").and_then(Value::as_u64).unwrap_or(0);
        if n == 0 {
            out.push("Your order is empty now.".into());
        } else {
            out.push(format!(
                "That's {n} item{} so far, {}. Anything else?",
                if n == 1 { "" } else { "s" },
                money(str_of(cart, "subtotal"))
            ));
        }
    }
    if out.is_empty() {
        out.push(help(menu));
    }
    out.join(" ")
}

fn help(menu: &Menu) -> String {
    let example = menu
        .items
        .iter()
        .find(|i| i.available)
        .map_or_else(|| "a dish".to_string(), |i| i.name.to_lowercase());
    format!(
        "Sorry, I didn't catch that. You can order (\"two {example}s\"), ask what's vegetarian, \
         or say \"that's all\" when you're done."
    )
}

fn read_back_text(menu: &Menu, cart: &Value, done: bool) -> String {
    let lines: Vec<String> = cart
        .get("lines")
        .and_then(Value::as_array)
        .map(|ls| ls.iter().map(|l| line_text(menu, l)).collect())
        .unwrap_or_default();
    if lines.is_empty() {
        return "Your order is empty — what would you like?".into();
    }
    let total = money(str_of(cart, "subtotal"));
    if done {
        format!(
            "Here's your order: {}. That's {total} in total. Does that look right?",
            join(&lines)
        )
    } else {
        format!("You have {}, {total} in total.", join(&lines))
    }
}

fn search_text(menu: &Menu, result: &Value, topic: &str, recommend: bool, which: bool) -> String {
    let matches: Vec<&Value> = result
        .get("matches")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let available: Vec<&Value> = matches
        .iter()
        .copied()
        .filter(|m| m.get("available").and_then(Value::as_bool) != Some(false))
        .collect();
    let named = |ms: &[&Value], n: usize| -> Vec<String> {
        ms.iter()
            .take(n)
            .map(|m| format!("{} ({})", str_of(m, "name"), money(str_of(m, "price"))))
            .collect()
    };
    if available.is_empty() {
        return if topic == "menu" {
            "Sorry, nothing is available right now.".into()
        } else {
            format!("Sorry, we don't have any {topic} on the menu.")
        };
    }
    if recommend {
        // The first dish of each of the two sections with the highest average price:
        // main courses rather than sides or drinks.
        let mut sections: Vec<(i64, usize)> = menu
            .sections
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let prices: Vec<i64> = menu
                    .items
                    .iter()
                    .filter(|x| x.section_id == s.id)
                    .map(|x| x.price)
                    .collect();
                let n = i64::try_from(prices.len()).unwrap_or(1).max(1);
                (prices.iter().sum::<i64>() / n, i)
            })
            .collect();
        sections.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let picks: Vec<&Value> = sections
            .iter()
            .filter_map(|(_, i)| menu.sections.get(*i))
            .filter_map(|s| {
                available.iter().copied().find(|m| {
                    menu.item(str_of(m, "id"))
                        .is_some_and(|x| x.section_id == s.id)
                })
            })
            .take(2)
            .collect();
        let picks = if picks.is_empty() {
            available.clone()
        } else {
            picks
        };
        return format!(
            "I'd suggest the {} — the full menu is on your screen.",
            named(&picks, 2).join(" or the ")
        );
    }
    let mut names = named(&available, 6);
    if available.len() > 6 {
        names.push(format!("{} more", available.len() - 6));
    }
    if which {
        let one = topic.strip_suffix('s').unwrap_or(topic);
        format!("Which {one} would you like? We have {}.", join(&names))
    } else if topic == "menu" {
        format!(
            "Here's the menu — {} and more. What would you like?",
            join(&named(&available, 4))
        )
    } else {
        format!("{}: {}.", capitalize(topic), join(&names))
    }
}

fn list_of(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| s.replace('_', " "))
                .collect()
        })
        .unwrap_or_default()
}

fn dish_text(menu: &Menu, cur: Currency, r: &Value, ask: &Ask, option: &Option<String>) -> String {
    let name = str_of(r, "name");
    if r.get("available").and_then(Value::as_bool) == Some(false) {
        return unavailable(menu, cur, name);
    }
    let price = money(str_of(r, "price"));
    let groups: Vec<&Value> = r
        .get("modifier_groups")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let option_price = option.as_ref().and_then(|o| {
        groups.iter().find_map(|g| {
            g.get("options")
                .and_then(Value::as_array)
                .and_then(|os| os.iter().find(|x| str_of(x, "name") == o))
                .map(|x| (o.clone(), money(str_of(x, "price_delta"))))
        })
    });
    let dietary = list_of(r, "dietary");
    let allergens = list_of(r, "allergens");
    let tags = {
        let mut s = String::new();
        if !dietary.is_empty() {
            s.push_str(&format!(" It's {}.", join(&dietary)));
        }
        if !allergens.is_empty() {
            s.push_str(&format!(" Contains {}.", join(&allergens)));
        }
        s
    };
    match ask {
        Ask::Price => match option_price {
            Some((o, delta)) => format!("The {name} is {price}; {o} is {delta} extra."),
            None => format!("The {name} is {price}."),
        },
        Ask::Availability => format!("Yes, the {name} is available — {price}.{tags}"),
        Ask::Options => {
            let opts: Vec<String> = groups
                .iter()
                .map(|g| {
                    let names: Vec<String> = g
                        .get("options")
                        .and_then(Value::as_array)
                        .map(|os| os.iter().map(|x| str_of(x, "name").to_string()).collect())
                        .unwrap_or_default();
                    format!("{}: {}", str_of(g, "group"), names.join(", "))
                })
                .collect();
            if opts.is_empty() {
                format!("The {name} ({price}) comes just one way.")
            } else {
                format!("The {name} ({price}) — {}.", opts.join("; "))
            }
        }
        Ask::Describe => format!(
            "The {name} is {price}: {}.{tags}",
            str_of(r, "description").to_lowercase()
        ),
    }
}

fn financial(plan: &Plan, outcomes: &[ToolOutcome]) -> String {
    let mut out: Vec<String> = Vec::new();
    for (purpose, outcome) in plan.purposes.iter().zip(outcomes) {
        let r = &outcome.result;
        if !outcome.ok {
            out.push(format!("Sorry — {}.", error_message(outcome)));
            continue;
        }
        match purpose {
            Purpose::Accounts => {
                let accounts: Vec<String> = r
                    .get("accounts")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                format!("{} {}", str_of(x, "name"), money(str_of(x, "balance")))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(format!(
                    "{} has {} account{} totalling {}: {}.",
                    str_of(r, "client"),
                    accounts.len(),
                    if accounts.len() == 1 { "" } else { "s" },
                    money(str_of(r, "total")),
                    join(&accounts)
                ));
            }
            Purpose::Transactions => {
                let txs: Vec<String> = r
                    .get("transactions")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .take(5)
                            .map(|x| {
                                format!(
                                    "{} {} ({})",
                                    str_of(x, "description"),
                                    money(str_of(x, "amount")),
                                    str_of(x, "date")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if txs.is_empty() {
                    out.push(format!(
                        "There are no matching transactions on {}.",
                        str_of(r, "account")
                    ));
                } else {
                    out.push(format!(
                        "Recent transactions on {}: {}.",
                        str_of(r, "account"),
                        join(&txs)
                    ));
                }
            }
            Purpose::Compare => {
                let rows: Vec<&Value> = r
                    .get("rows")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let rate = |v: &Value| -> (String, String) {
                    let first = v
                        .get("values")
                        .and_then(Value::as_array)
                        .and_then(|a| a.first())
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    (str_of(v, "label").to_string(), first)
                };
                let described: Vec<String> = rows
                    .iter()
                    .map(|v| {
                        let (l, r) = rate(v);
                        format!("{l} at {r}")
                    })
                    .collect();
                out.push(format!(
                    "Here's the comparison: {}. The table on screen has fees, minimums, risk and liquidity.",
                    join(&described)
                ));
            }
            _ => {}
        }
    }
    for n in &plan.notes {
        match n {
            Note::WhichClient(names) => out.push(format!(
                "Which client would you like to look at — {}?",
                join(names).replace(" and ", " or ")
            )),
            Note::Greeting => out.insert(
                0,
                "Hello! I can show a client's accounts and transactions, or compare products."
                    .into(),
            ),
            Note::Thanks => out.push("You're welcome!".into()),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push(
            "I can show a client's accounts (\"show me Ada's accounts\"), their transactions \
             (\"Grace's savings transactions\"), or compare products (\"compare the CDs\")."
                .into(),
        );
    }
    out.join(" ")
}

/// Used by tests: the matcher must know every dish the replies name.
#[cfg(test)]
pub(super) fn names_every_item(menu: &Menu) -> bool {
    let lex = super::matcher::Lexicon::new(menu);
    menu.items.iter().all(|i| {
        let toks = super::text::tokenize(&i.name);
        lex.items(&toks)
            .first()
            .is_some_and(|m| lex.item(m.item).map(|x| &x.id) == Some(&i.id))
    })
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn money_reads_naturally() {
        assert_eq!(money("12.99 USD"), "$12.99");
        assert_eq!(money("-1000.00 USD"), "-$1,000.00");
        assert_eq!(money("154700.82 USD"), "$154,700.82");
        assert_eq!(money("9.50 EUR"), "€9.50");
        assert_eq!(money("1200 JPY"), "1,200 JPY");
    }
}
