//! Sample data types for the financial advisory desk.

use serde::{Deserialize, Serialize};

/// A client of the advisory desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub id: String,
    pub name: String,
    /// `conservative`, `balanced` or `growth`.
    pub risk_profile: String,
}

/// One account a client holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub client_id: String,
    /// `checking`, `savings`, `brokerage`, `retirement`.
    pub kind: String,
    pub name: String,
    /// Balance in minor units.
    pub balance: i64,
    pub currency: String,
}

/// A posted transaction (negative amounts are debits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub id: String,
    pub account_id: String,
    /// ISO date `YYYY-MM-DD`.
    pub date: String,
    pub description: String,
    pub amount: i64,
    pub category: String,
}

/// A product the desk can compare for a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: String,
    pub name: String,
    /// `savings`, `cd`, `fund`.
    pub kind: String,
    /// Annual rate or expected return in basis points.
    pub rate_bps: i64,
    /// Annual fee in basis points.
    pub fee_bps: i64,
    /// Minimum deposit in minor units.
    pub minimum: i64,
    pub risk: String,
    pub liquidity: String,
}

/// The whole sample book of a financial tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Book {
    pub clients: Vec<Client>,
    pub accounts: Vec<Account>,
    pub transactions: Vec<Transaction>,
    pub products: Vec<Product>,
}
