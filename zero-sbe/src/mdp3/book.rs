//! A market-by-price book (CME MDP 3.0 "Market by Price"): per side, price levels best first,
//! at most `depth` of them, changed by level (1 is the best).
//!
//! The update actions, as CME defines them for MBP:
//! - New: a level is inserted at its place; those below move down, the last falls off.
//! - Change: the level's quantity and order count change (its price stays).
//! - Delete: the level goes; those below move up.
//! - DeleteThru: the whole side is cleared.
//! - DeleteFrom: levels 1 to the given one go; the rest move up.
//! - Overlay: the level is replaced, price and all.

/// One price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// The price's mantissa (exponent -9).
    pub price: i64,
    /// The quantity.
    pub qty: i32,
    /// The number of orders, if sent.
    pub orders: Option<i32>,
}

/// MDUpdateAction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// New (0).
    New,
    /// Change (1).
    Change,
    /// Delete (2).
    Delete,
    /// DeleteThru (3).
    DeleteThru,
    /// DeleteFrom (4).
    DeleteFrom,
    /// Overlay (5).
    Overlay,
}

impl Action {
    /// From the wire's value.
    pub fn from_u8(v: u8) -> Option<Action> {
        Some(match v {
            0 => Action::New,
            1 => Action::Change,
            2 => Action::Delete,
            3 => Action::DeleteThru,
            4 => Action::DeleteFrom,
            5 => Action::Overlay,
            _ => return None,
        })
    }
}

/// Which side of which book an entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookSide {
    /// Bid ('0').
    Bid,
    /// Offer ('1').
    Offer,
    /// Implied bid ('E').
    ImpliedBid,
    /// Implied offer ('F').
    ImpliedOffer,
}

impl BookSide {
    /// From MDEntryType's character; `None` for entries that are not book levels.
    pub fn from_entry_type(c: u8) -> Option<BookSide> {
        Some(match c {
            b'0' => BookSide::Bid,
            b'1' => BookSide::Offer,
            b'E' => BookSide::ImpliedBid,
            b'F' => BookSide::ImpliedOffer,
            _ => return None,
        })
    }
}

/// An update the book cannot take (a level outside its depth): the book is no longer known
/// to be right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("level {level} is outside a book of depth {depth}")]
pub struct BookError {
    /// The level.
    pub level: u8,
    /// The depth.
    pub depth: usize,
}

/// A side's levels, best first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Levels {
    levels: Vec<Level>,
}

impl Levels {
    /// The levels, best first.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    fn apply(&mut self, depth: usize, action: Action, level: u8, update: Level) -> Result<(), BookError> {
        let bad = BookError { level, depth };
        let at = usize::from(level).checked_sub(1).filter(|&i| i < depth);
        match action {
            Action::DeleteThru => self.levels.clear(),
            Action::DeleteFrom => {
                let n = usize::from(level).min(self.levels.len());
                self.levels.drain(..n);
            }
            Action::New => {
                let at = at.ok_or(bad)?;
                if at > self.levels.len() {
                    return Err(bad);
                }
                self.levels.insert(at, update);
                self.levels.truncate(depth);
            }
            Action::Change | Action::Overlay => {
                let slot = at.and_then(|i| self.levels.get_mut(i)).ok_or(bad)?;
                *slot = update;
            }
            Action::Delete => {
                let at = at.filter(|&i| i < self.levels.len()).ok_or(bad)?;
                self.levels.remove(at);
            }
        }
        Ok(())
    }
}

/// A market-by-price book: outright and implied sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    /// Outright bids.
    pub bids: Levels,
    /// Outright offers.
    pub offers: Levels,
    /// Implied bids.
    pub implied_bids: Levels,
    /// Implied offers.
    pub implied_offers: Levels,
    depth: usize,
    implied_depth: usize,
}

impl Book {
    /// An empty book of `depth` outright and `implied_depth` implied levels a side.
    pub fn new(depth: usize, implied_depth: usize) -> Book {
        Book {
            bids: Levels::default(),
            offers: Levels::default(),
            implied_bids: Levels::default(),
            implied_offers: Levels::default(),
            depth,
            implied_depth,
        }
    }

    /// Applies one entry.
    pub fn apply(
        &mut self,
        side: BookSide,
        action: Action,
        level: u8,
        update: Level,
    ) -> Result<(), BookError> {
        let (levels, depth) = match side {
            BookSide::Bid => (&mut self.bids, self.depth),
            BookSide::Offer => (&mut self.offers, self.depth),
            BookSide::ImpliedBid => (&mut self.implied_bids, self.implied_depth),
            BookSide::ImpliedOffer => (&mut self.implied_offers, self.implied_depth),
        };
        levels.apply(depth, action, level, update)
    }

    /// Takes new depths (an instrument definition's MarketDepth): levels past them go.
    pub fn set_depth(&mut self, depth: usize, implied_depth: usize) {
        self.depth = depth;
        self.implied_depth = implied_depth;
        for (side, d) in [(&mut self.bids, depth), (&mut self.offers, depth)] {
            side.levels.truncate(d);
        }
        for side in [&mut self.implied_bids, &mut self.implied_offers] {
            side.levels.truncate(implied_depth);
        }
    }

    /// The outright and implied depths.
    pub fn depth(&self) -> (usize, usize) {
        (self.depth, self.implied_depth)
    }

    /// Empties every side (a book reset, a channel reset, a snapshot about to be applied).
    pub fn clear(&mut self) {
        for side in [&mut self.bids, &mut self.offers, &mut self.implied_bids, &mut self.implied_offers] {
            side.levels.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(price: i64, qty: i32) -> Level {
        Level { price, qty, orders: None }
    }

    fn prices(side: &Levels) -> Vec<i64> {
        side.levels().iter().map(|l| l.price).collect()
    }

    #[test]
    fn every_action() {
        let mut b = Book::new(3, 2);
        for (level, price) in [(1, 100), (2, 99), (3, 98)] {
            b.apply(BookSide::Bid, Action::New, level, l(price, 5)).unwrap();
        }
        // New at the top pushes the last level out.
        b.apply(BookSide::Bid, Action::New, 1, l(101, 1)).unwrap();
        assert_eq!(prices(&b.bids), [101, 100, 99]);
        b.apply(BookSide::Bid, Action::Change, 2, l(100, 7)).unwrap();
        assert_eq!(b.bids.levels()[1].qty, 7);
        b.apply(BookSide::Bid, Action::Delete, 1, l(101, 0)).unwrap();
        assert_eq!(prices(&b.bids), [100, 99]);
        b.apply(BookSide::Bid, Action::Overlay, 2, l(97, 3)).unwrap();
        assert_eq!(prices(&b.bids), [100, 97]);
        b.apply(BookSide::Bid, Action::DeleteFrom, 1, l(0, 0)).unwrap();
        assert_eq!(prices(&b.bids), [97]);
        b.apply(BookSide::Bid, Action::DeleteThru, 1, l(0, 0)).unwrap();
        assert!(b.bids.levels().is_empty());
        // Implied sides have their own depth.
        b.apply(BookSide::ImpliedOffer, Action::New, 1, l(102, 1)).unwrap();
        assert!(b.apply(BookSide::ImpliedOffer, Action::New, 3, l(103, 1)).is_err());
    }

    #[test]
    fn impossible_updates_are_errors() {
        let mut b = Book::new(3, 2);
        assert!(b.apply(BookSide::Bid, Action::New, 0, l(1, 1)).is_err());
        assert!(b.apply(BookSide::Bid, Action::New, 2, l(1, 1)).is_err(), "a hole above it");
        assert!(b.apply(BookSide::Bid, Action::Change, 1, l(1, 1)).is_err(), "no such level");
        assert!(b.apply(BookSide::Offer, Action::Delete, 1, l(1, 1)).is_err());
        assert!(b.apply(BookSide::Offer, Action::New, 4, l(1, 1)).is_err(), "past the depth");
    }
}
