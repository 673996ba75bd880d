//! A market-by-order book (CME MDP 3.0 "Market by Order"): every resting order by its
//! OrderID (37), each side in queue order (best price first, then MDOrderPriority (37707)).
//!
//! The update actions, as CME defines them for MBO (MDUpdateAction in
//! MDIncrementalRefreshOrderBook47, OrderUpdateAction in MDIncrementalRefreshBook46):
//! - New: the order joins the book; an OrderID already resting is an error.
//! - Change (Update): the resting order takes the new price, quantity and priority.
//! - Delete: the order leaves; an unknown OrderID is an error.
//!
//! An error means the book and the exchange disagree: the channel marks the book stale.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

/// A side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bid ('0').
    Bid,
    /// Offer ('1').
    Offer,
}

impl Side {
    /// From MDEntryType's character; `None` for anything but an outright bid or offer.
    pub fn from_entry_type(c: u8) -> Option<Side> {
        match c {
            b'0' => Some(Side::Bid),
            b'1' => Some(Side::Offer),
            _ => None,
        }
    }
}

/// One resting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// OrderID (37).
    pub id: u64,
    /// The side.
    pub side: Side,
    /// The price's mantissa (exponent -9).
    pub price: i64,
    /// The visible quantity, MDDisplayQty (37706).
    pub qty: i32,
    /// Its place in the queue at its price, MDOrderPriority (37707): lower goes first.
    pub priority: u64,
}

/// What to do with an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    /// New (0).
    New,
    /// Change or Update (1).
    Change,
    /// Delete (2).
    Delete,
}

impl OrderAction {
    /// From the wire's value (MDUpdateAction or OrderUpdateAction: the same numbers).
    pub fn from_u8(v: u8) -> Option<OrderAction> {
        match v {
            0 => Some(OrderAction::New),
            1 => Some(OrderAction::Change),
            2 => Some(OrderAction::Delete),
            _ => None,
        }
    }
}

/// An update the book cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// New for an OrderID already resting.
    #[error("order {0} is already in the book")]
    Exists(u64),
    /// Change or Delete for an OrderID not in the book.
    #[error("order {0} is not in the book")]
    Unknown(u64),
}

/// The queue key of a side: best price first, then priority, then OrderID (unique).
type BidKey = (Reverse<i64>, u64, u64);
type OfferKey = (i64, u64, u64);

/// A market-by-order book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderBook {
    orders: HashMap<u64, Order>,
    bids: BTreeSet<BidKey>,
    offers: BTreeSet<OfferKey>,
}

impl OrderBook {
    /// An empty book.
    pub fn new() -> OrderBook {
        OrderBook::default()
    }

    /// Applies one update. For Delete only `order.id` is read.
    pub fn apply(&mut self, action: OrderAction, order: Order) -> Result<(), OrderError> {
        match action {
            OrderAction::New => {
                if self.orders.contains_key(&order.id) {
                    return Err(OrderError::Exists(order.id));
                }
                self.insert(order);
            }
            OrderAction::Change => {
                let old = self.orders.get(&order.id).copied().ok_or(OrderError::Unknown(order.id))?;
                self.unlink(&old);
                self.insert(order);
            }
            OrderAction::Delete => {
                let old = self.orders.remove(&order.id).ok_or(OrderError::Unknown(order.id))?;
                self.unlink(&old);
            }
        }
        Ok(())
    }

    fn insert(&mut self, o: Order) {
        match o.side {
            Side::Bid => self.bids.insert((Reverse(o.price), o.priority, o.id)),
            Side::Offer => self.offers.insert((o.price, o.priority, o.id)),
        };
        self.orders.insert(o.id, o);
    }

    fn unlink(&mut self, o: &Order) {
        match o.side {
            Side::Bid => self.bids.remove(&(Reverse(o.price), o.priority, o.id)),
            Side::Offer => self.offers.remove(&(o.price, o.priority, o.id)),
        };
    }

    /// A resting order.
    pub fn order(&self, id: u64) -> Option<&Order> {
        self.orders.get(&id)
    }

    /// The bids in queue order: best price first, then priority.
    pub fn bids(&self) -> impl Iterator<Item = &Order> {
        self.bids.iter().map(|(_, _, id)| &self.orders[id])
    }

    /// The offers in queue order.
    pub fn offers(&self) -> impl Iterator<Item = &Order> {
        self.offers.iter().map(|(_, _, id)| &self.orders[id])
    }

    /// How many orders rest.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether no order rests.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Empties the book.
    pub fn clear(&mut self) {
        self.orders.clear();
        self.bids.clear();
        self.offers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(id: u64, side: Side, price: i64, priority: u64) -> Order {
        Order { id, side, price, qty: 1, priority }
    }

    fn ids<'a>(orders: impl Iterator<Item = &'a Order>) -> Vec<u64> {
        orders.map(|o| o.id).collect()
    }

    #[test]
    fn queue_order_is_price_then_priority() {
        let mut b = OrderBook::new();
        b.apply(OrderAction::New, o(1, Side::Bid, 100, 5)).unwrap();
        b.apply(OrderAction::New, o(2, Side::Bid, 101, 9)).unwrap();
        b.apply(OrderAction::New, o(3, Side::Bid, 100, 2)).unwrap();
        b.apply(OrderAction::New, o(4, Side::Offer, 103, 1)).unwrap();
        b.apply(OrderAction::New, o(5, Side::Offer, 102, 7)).unwrap();
        assert_eq!(ids(b.bids()), [2, 3, 1]);
        assert_eq!(ids(b.offers()), [5, 4]);
        // A change of price moves the order; a change of priority requeues it.
        b.apply(OrderAction::Change, o(1, Side::Bid, 102, 5)).unwrap();
        b.apply(OrderAction::Change, o(5, Side::Offer, 102, 0)).unwrap();
        assert_eq!(ids(b.bids()), [1, 2, 3]);
        b.apply(OrderAction::Delete, o(2, Side::Bid, 0, 0)).unwrap();
        assert_eq!(ids(b.bids()), [1, 3]);
        assert_eq!(b.len(), 4);
        assert_eq!(b.order(5).map(|o| o.priority), Some(0));
    }

    #[test]
    fn impossible_updates_are_errors() {
        let mut b = OrderBook::new();
        b.apply(OrderAction::New, o(1, Side::Bid, 100, 5)).unwrap();
        assert_eq!(b.apply(OrderAction::New, o(1, Side::Bid, 100, 5)), Err(OrderError::Exists(1)));
        assert_eq!(b.apply(OrderAction::Change, o(2, Side::Bid, 100, 5)), Err(OrderError::Unknown(2)));
        assert_eq!(b.apply(OrderAction::Delete, o(2, Side::Bid, 100, 5)), Err(OrderError::Unknown(2)));
        assert_eq!(b.len(), 1, "nothing changed");
    }
}
