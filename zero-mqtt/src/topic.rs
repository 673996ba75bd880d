//! MQTT topic names, topic filters, shared subscriptions and the subscription trie.
//!
//! Implements the rules of MQTT 5.0 / 3.1.1 section 4.7: validation of topic names and
//! filters, parsing of `$share/<group>/<filter>` shared subscriptions, a reference
//! matcher ([`matches()`]) and [`TopicTree`], a trie that maps (filter, key) pairs to values
//! and finds every entry matching a published topic without allocating.
//!
//! Deep topics are legal (a 65,535 byte filter can have 32,768 levels), so every tree
//! operation walks the levels iteratively, except matching, which recurses only where a
//! node has both an exact and a `+` child matching the same level.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

/// Maximum length in bytes of a topic name or topic filter (a UTF-8 string length prefix is `u16`).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Prefix that marks a shared subscription filter (MQTT 5.0 section 4.8.2).
pub const SHARE_PREFIX: &str = "$share/";

/// Returns `true` if `name` is a valid topic name for PUBLISH (non-empty, at most
/// [`MAX_TOPIC_LEN`] bytes, no wildcard characters and no U+0000).
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_TOPIC_LEN && !name.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

/// Returns `true` if `filter` is a valid topic filter: non-empty, at most [`MAX_TOPIC_LEN`]
/// bytes, no U+0000, `+` only as a whole level and `#` only as the whole last level.
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_TOPIC_LEN || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "#" => return levels.peek().is_none(),
            "+" => {}
            other if other.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// Error returned by [`parse_shared`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// The topic filter (after any `$share/<group>/` prefix) is missing or invalid.
    InvalidFilter,
    /// The share name is empty or contains `+`, `#` or U+0000.
    InvalidShareGroup,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicError::InvalidFilter => "invalid topic filter",
            TopicError::InvalidShareGroup => "invalid shared subscription group name",
        })
    }
}

impl std::error::Error for TopicError {}

/// A parsed shared subscription `$share/<group>/<filter>`, borrowing from the original filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SharedFilter<'a> {
    /// The share name (group); non-empty, without `/`, `+`, `#` or U+0000.
    pub group: &'a str,
    /// The topic filter the group subscribes to; a valid topic filter.
    pub filter: &'a str,
}

/// Parses a shared subscription filter.
///
/// Returns `Ok(None)` if `filter` does not start with `$share/` (an ordinary filter, which
/// the caller validates with [`valid_topic_filter`]), `Ok(Some(_))` for a well-formed
/// `$share/<group>/<filter>`, and an error if the group or the inner filter is invalid or
/// missing (`$share/group`).
pub fn parse_shared(filter: &str) -> Result<Option<SharedFilter<'_>>, TopicError> {
    let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
        return Ok(None);
    };
    let (group, inner) = match rest.split_once('/') {
        Some((group, inner)) => (group, Some(inner)),
        None => (rest, None),
    };
    if group.is_empty() || group.contains(['+', '#', '\0']) {
        return Err(TopicError::InvalidShareGroup);
    }
    match inner {
        Some(inner) if filter.len() <= MAX_TOPIC_LEN && valid_topic_filter(inner) => {
            Ok(Some(SharedFilter { group, filter: inner }))
        }
        _ => Err(TopicError::InvalidFilter),
    }
}

/// Checks a filter as a SUBSCRIBE carries it: a plain filter or `$share/<group>/<filter>`.
/// Returns the filter that topics are matched against and whether it is shared; `None` if it
/// is not valid.
pub fn subscription_filter(filter: &str) -> Option<(&str, bool)> {
    match parse_shared(filter) {
        Ok(Some(shared)) => Some((shared.filter, true)),
        Ok(None) => valid_topic_filter(filter).then_some((filter, false)),
        Err(_) => None,
    }
}

/// Reference matcher: returns `true` if the topic filter `filter` matches the topic name `topic`.
///
/// `+` matches exactly one (possibly empty) level, `#` matches the parent level and any
/// number of child levels, and topics starting with `$` are not matched by filters whose
/// first level is `+` or `#`. Both arguments are assumed valid; the result for invalid
/// input is unspecified.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && matches!(filter.split('/').next(), Some("+" | "#")) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// One trie node; the path from the root spells the filter levels that lead to it.
struct Node<K, V> {
    /// Children for literal levels (including the empty level).
    children: HashMap<Box<str>, Node<K, V>>,
    /// Child for the `+` level.
    plus: Option<Box<Node<K, V>>>,
    /// Entries whose filter ends exactly at this node.
    entries: HashMap<K, V>,
    /// Entries whose filter is this node's path followed by `/#` (or `#` at the root).
    hash: HashMap<K, V>,
}

impl<K, V> Node<K, V> {
    fn new() -> Self {
        Node { children: HashMap::new(), plus: None, entries: HashMap::new(), hash: HashMap::new() }
    }

    fn child(&self, level: &str) -> Option<&Self> {
        if level == "+" {
            self.plus.as_deref()
        } else {
            self.children.get(level)
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Self> {
        if level == "+" {
            self.plus.as_deref_mut()
        } else {
            self.children.get_mut(level)
        }
    }

    fn child_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some())
    }

    fn map(&self, hash: bool) -> &HashMap<K, V> {
        if hash {
            &self.hash
        } else {
            &self.entries
        }
    }

    fn map_mut(&mut self, hash: bool) -> &mut HashMap<K, V> {
        if hash {
            &mut self.hash
        } else {
            &mut self.entries
        }
    }

    /// Moves all child nodes onto `stack`, leaving this node a leaf.
    fn drain_children_into(&mut self, stack: &mut Vec<Node<K, V>>) {
        stack.extend(self.children.drain().map(|(_, child)| child));
        stack.extend(self.plus.take().map(|child| *child));
    }
}

impl<K, V> Drop for Node<K, V> {
    /// Drops the subtree iteratively so that very deep filters cannot overflow the stack.
    fn drop(&mut self) {
        if self.child_count() == 0 {
            return;
        }
        let mut stack = Vec::new();
        self.drain_children_into(&mut stack);
        while let Some(mut node) = stack.pop() {
            node.drain_children_into(&mut stack);
        }
    }
}

/// Splits a filter into the path of the node that stores it (`None` for the root) and
/// whether the filter ends with the multi-level wildcard `#`.
fn split_hash(filter: &str) -> (Option<&str>, bool) {
    if filter == "#" {
        (None, true)
    } else if let Some(path) = filter.strip_suffix("/#") {
        (Some(path), true)
    } else {
        (Some(filter), false)
    }
}

/// The levels of a node path as produced by [`split_hash`].
fn path_levels(path: Option<&str>) -> impl Iterator<Item = &str> {
    path.into_iter().flat_map(|path| path.split('/'))
}

/// Calls `f` for every entry below `node` (which has already consumed its own level) that
/// matches the remaining topic `levels`.
///
/// Recurses only when both an exact and a `+` child match the same level; otherwise it loops.
fn walk<K, V, F: FnMut(&K, &V)>(mut node: &Node<K, V>, mut levels: std::str::Split<'_, char>, f: &mut F) {
    loop {
        node.hash.iter().for_each(|(k, v)| f(k, v));
        let Some(level) = levels.next() else {
            node.entries.iter().for_each(|(k, v)| f(k, v));
            return;
        };
        match (node.children.get(level), node.plus.as_deref()) {
            (Some(exact), Some(plus)) => {
                walk(exact, levels.clone(), f);
                node = plus;
            }
            (Some(next), None) | (None, Some(next)) => node = next,
            (None, None) => return,
        }
    }
}

/// A subscription trie mapping (topic filter, key) pairs to values.
///
/// Filters passed to its methods must be valid topic filters (see [`valid_topic_filter`]);
/// shared subscriptions are stored under their inner filter, with the group in the key.
pub struct TopicTree<K, V> {
    root: Node<K, V>,
    len: usize,
}

impl<K, V> Default for TopicTree<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for TopicTree<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicTree").field("len", &self.len).finish_non_exhaustive()
    }
}

impl<K, V> TopicTree<K, V> {
    /// Creates an empty tree.
    pub fn new() -> Self {
        TopicTree { root: Node::new(), len: 0 }
    }

    /// Returns the number of (filter, key) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns `true` if the tree holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f(filter, key, value)` for every entry; the filter string is rebuilt per node.
    pub fn for_each(&self, mut f: impl FnMut(&str, &K, &V)) {
        for (k, v) in &self.root.hash {
            f("#", k, v);
        }
        // Each stack item is (node, length of the parent's path, node level); `path` holds
        // the current node's levels, each followed by '/'.
        let mut path = String::new();
        let mut stack: Vec<(&Node<K, V>, usize, &str)> = Vec::new();
        push_children(&self.root, 0, &mut stack);
        while let Some((node, parent_len, level)) = stack.pop() {
            path.truncate(parent_len);
            path.push_str(level);
            path.push('/');
            let filter = &path[..path.len() - 1];
            for (k, v) in &node.entries {
                f(filter, k, v);
            }
            if !node.hash.is_empty() {
                path.push('#');
                for (k, v) in &node.hash {
                    f(&path, k, v);
                }
                path.pop();
            }
            push_children(node, path.len(), &mut stack);
        }
    }

    /// Number of trie nodes, including the root.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            count += 1;
            stack.extend(node.children.values());
            stack.extend(node.plus.as_deref());
        }
        count
    }
}

/// Pushes the children of `node` for [`TopicTree::for_each`].
fn push_children<'a, K, V>(
    node: &'a Node<K, V>,
    path_len: usize,
    stack: &mut Vec<(&'a Node<K, V>, usize, &'a str)>,
) {
    stack.extend(node.children.iter().map(|(level, child)| (child, path_len, &**level)));
    stack.extend(node.plus.as_deref().map(|child| (child, path_len, "+")));
}

impl<K: Eq + Hash, V> TopicTree<K, V> {
    /// Inserts or replaces the value stored under (filter, key). Returns the previous value.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        debug_assert!(valid_topic_filter(filter), "invalid topic filter {filter:?}");
        let (path, hash) = split_hash(filter);
        let mut node = &mut self.root;
        for level in path_levels(path) {
            node = if level == "+" {
                node.plus.get_or_insert_with(|| Box::new(Node::new()))
            } else {
                if !node.children.contains_key(level) {
                    node.children.insert(level.into(), Node::new());
                }
                match node.children.get_mut(level) {
                    Some(child) => child,
                    None => unreachable!("child was just inserted"),
                }
            };
        }
        let previous = node.map_mut(hash).insert(key, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes the entry stored under (filter, key) and returns its value, pruning nodes
    /// that become empty.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let (path, hash) = split_hash(filter);
        // Pass 1: find the entry and the depth of the deepest node on the path that still
        // holds something else after the removal; everything below it gets pruned.
        let mut node = &self.root;
        let mut keep = 0;
        let mut depth = 0;
        for level in path_levels(path) {
            if !node.entries.is_empty() || !node.hash.is_empty() || node.child_count() > 1 {
                keep = depth;
            }
            node = node.child(level)?;
            depth += 1;
        }
        let map = node.map(hash);
        if !map.contains_key(key) {
            return None;
        }
        if map.len() > 1 || !node.map(!hash).is_empty() || node.child_count() > 0 {
            keep = depth;
        }
        // Pass 2: walk to the deepest surviving node and remove either the entry or the
        // branch that leads to it.
        let mut levels = path_levels(path);
        let mut node = &mut self.root;
        for level in levels.by_ref().take(keep) {
            node = node.child_mut(level)?;
        }
        let removed = match levels.next() {
            None => node.map_mut(hash).remove(key),
            Some(level) => {
                let mut branch =
                    if level == "+" { *node.plus.take()? } else { node.children.remove(level)? };
                let mut node = &mut branch;
                for level in levels {
                    node = node.child_mut(level)?;
                }
                node.map_mut(hash).remove(key)
            }
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Returns the value stored under (filter, key).
    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        self.entries(filter)?.get(key)
    }

    /// How many keys `filter` has.
    pub fn keys(&self, filter: &str) -> usize {
        self.entries(filter).map_or(0, HashMap::len)
    }

    fn entries(&self, filter: &str) -> Option<&HashMap<K, V>> {
        let (path, hash) = split_hash(filter);
        let mut node = &self.root;
        for level in path_levels(path) {
            node = node.child(level)?;
        }
        Some(node.map(hash))
    }

    /// The value stored under (filter, key), to change in place.
    pub fn get_mut(&mut self, filter: &str, key: &K) -> Option<&mut V> {
        let (path, hash) = split_hash(filter);
        let mut node = &mut self.root;
        for level in path_levels(path) {
            node = node.child_mut(level)?;
        }
        node.map_mut(hash).get_mut(key)
    }

    /// Calls `f(key, value)` for every entry whose filter matches `topic`, with the `$` rule above.
    ///
    /// Does not allocate and visits each (filter, key) entry at most once.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&K, &V)) {
        if self.len == 0 {
            return; // most brokers have no shared groups, and one shard has no remote interest
        }
        let root = &self.root;
        // Filters starting with a wildcard do not match topics starting with '$'.
        let wildcards = !topic.starts_with('$');
        if wildcards {
            root.hash.iter().for_each(|(k, v)| f(k, v));
        }
        let mut levels = topic.split('/');
        let Some(first) = levels.next() else { return };
        if let Some(exact) = root.children.get(first) {
            walk(exact, levels.clone(), &mut f);
        }
        if let Some(plus) = root.plus.as_deref().filter(|_| wildcards) {
            walk(plus, levels, &mut f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn matched_keys<V>(tree: &TopicTree<u64, V>, topic: &str) -> Vec<u64> {
        let mut keys = Vec::new();
        tree.for_each_match(topic, |k, _| keys.push(*k));
        keys.sort_unstable();
        keys
    }

    #[test]
    fn topic_name_validation() {
        for ok in ["a", "/", "a/b", "a//b", "/a", "$SYS/x", " ", "é/ü"] {
            assert!(valid_topic_name(ok), "{ok:?}");
        }
        for bad in ["", "+", "#", "a/+", "a/#", "a+", "a\0b"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        assert!(valid_topic_name(&"a".repeat(MAX_TOPIC_LEN)));
        assert!(!valid_topic_name(&"a".repeat(MAX_TOPIC_LEN + 1)));
    }

    #[test]
    fn topic_filter_validation() {
        for ok in
            ["a/#", "#", "+", "+/+", "a/+/b", "/", "//", "/#", "+/#", "$SYS/#", "a//b", "sport/tennis/#"]
        {
            assert!(valid_topic_filter(ok), "{ok:?}");
        }
        for bad in ["", "a#", "a/#/b", "a+", "+a", "#/", "##", "++", "a/b#", "a/+b/c", "a\0"] {
            assert!(!valid_topic_filter(bad), "{bad:?}");
        }
        assert!(valid_topic_filter(&"a".repeat(MAX_TOPIC_LEN)));
        assert!(!valid_topic_filter(&"a".repeat(MAX_TOPIC_LEN + 1)));
    }

    #[test]
    fn shared_filter_parsing() {
        assert_eq!(parse_shared("a/b"), Ok(None));
        assert_eq!(parse_shared("$share"), Ok(None));
        assert_eq!(parse_shared("$SHARE/g/a"), Ok(None));
        assert_eq!(parse_shared("$share/g/a/#"), Ok(Some(SharedFilter { group: "g", filter: "a/#" })));
        assert_eq!(parse_shared("$share/g/#"), Ok(Some(SharedFilter { group: "g", filter: "#" })));
        assert_eq!(parse_shared("$share/g//"), Ok(Some(SharedFilter { group: "g", filter: "/" })));
        assert_eq!(
            parse_shared("$share/$g/$SYS/+"),
            Ok(Some(SharedFilter { group: "$g", filter: "$SYS/+" }))
        );
        assert_eq!(parse_shared("$share/g"), Err(TopicError::InvalidFilter));
        assert_eq!(parse_shared("$share/g/"), Err(TopicError::InvalidFilter));
        assert_eq!(parse_shared("$share/g/a#"), Err(TopicError::InvalidFilter));
        assert_eq!(parse_shared("$share/g/a/#/b"), Err(TopicError::InvalidFilter));
        assert_eq!(parse_shared("$share/"), Err(TopicError::InvalidShareGroup));
        assert_eq!(parse_shared("$share//a"), Err(TopicError::InvalidShareGroup));
        assert_eq!(parse_shared("$share/+/a"), Err(TopicError::InvalidShareGroup));
        assert_eq!(parse_shared("$share/g#/a"), Err(TopicError::InvalidShareGroup));
        assert_eq!(parse_shared("$share/g\0/a"), Err(TopicError::InvalidShareGroup));
        let long = format!("$share/g/{}", "a".repeat(MAX_TOPIC_LEN - 8));
        assert_eq!(parse_shared(&long), Err(TopicError::InvalidFilter));
        assert_eq!(TopicError::InvalidShareGroup.to_string(), "invalid shared subscription group name");
        assert_eq!(TopicError::InvalidFilter.to_string(), "invalid topic filter");
    }

    /// (filter, topic, expected) examples, mostly from MQTT 5.0 section 4.7.
    const CASES: &[(&str, &str, bool)] = &[
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", true),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true),
        ("sport/tennis/player1/#", "sport/tennis/player2", false),
        ("sport/tennis/player1/#", "sport/tennis", false),
        ("sport/#", "sport", true),
        ("sport/#", "sport/", true),
        ("sport/#", "sport/tennis/x", true),
        ("sport/#", "sports", false),
        ("#", "sport", true),
        ("#", "/", true),
        ("#", "/finance", true),
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+", "finance", true),
        ("+", "finance/", false),
        ("+", "/finance", false),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+/tennis/#", "sport/tennis", true),
        ("+/tennis/#", "sport/tennis/player1", true),
        ("+/tennis/#", "sport/football", false),
        ("a//b", "a//b", true),
        ("a/+/b", "a//b", true),
        ("a/+/b", "a/b", false),
        ("/", "/", true),
        ("+/+", "/", true),
        ("+", "/", false),
        ("a/b", "a/b/c", false),
        ("a/b/c", "a/b", false),
        ("#", "$SYS/x", false),
        ("#", "$SYS", false),
        ("+/x", "$SYS/x", false),
        ("+", "$SYS", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("$SYS/#", "$SYS/x", true),
        ("$SYS/#", "$SYS", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("$SYS/+", "$SYS/x", true),
        ("a/+", "a/$x", true),
        ("a/#", "a/$x/y", true),
        ("/#", "/$x", true),
        ("$x", "$x", true),
    ];

    #[test]
    fn reference_matcher_examples() {
        for &(filter, topic, expected) in CASES {
            assert!(valid_topic_filter(filter) && valid_topic_name(topic), "{filter:?} {topic:?}");
            assert_eq!(matches(filter, topic), expected, "{filter:?} vs {topic:?}");
        }
    }

    #[test]
    fn tree_matches_examples() {
        let mut tree = TopicTree::new();
        for (i, &(filter, _, _)) in CASES.iter().enumerate() {
            tree.insert(filter, i as u64, ());
        }
        for &(_, topic, _) in CASES {
            let expected: Vec<u64> = CASES
                .iter()
                .enumerate()
                .filter(|(_, (filter, _, _))| matches(filter, topic))
                .map(|(i, _)| i as u64)
                .collect();
            assert_eq!(matched_keys(&tree, topic), expected, "topic {topic:?}");
        }
    }

    #[test]
    fn insert_get_remove() {
        let mut tree = TopicTree::new();
        assert!(tree.is_empty());
        assert_eq!(tree.insert("a/+/#", 1, "x"), None);
        assert_eq!(tree.insert("a/+/#", 2, "y"), None);
        assert_eq!(tree.insert("a/+/#", 1, "z"), Some("x"));
        assert_eq!(tree.insert("a/+", 1, "w"), None);
        assert_eq!(tree.insert("#", 1, "h"), None);
        assert_eq!(tree.len(), 4);
        assert_eq!(tree.get("a/+/#", &1), Some(&"z"));
        assert_eq!(tree.get("a/+", &1), Some(&"w"));
        assert_eq!(tree.get("a/+", &2), None);
        assert_eq!(tree.get("a", &1), None);
        assert_eq!(tree.get("a/+/#/x", &1), None);
        assert_eq!(tree.get("#", &1), Some(&"h"));
        assert_eq!(tree.remove("a/+", &2), None);
        assert_eq!(tree.remove("b", &1), None);
        assert_eq!(tree.remove("a/+/#", &1), Some("z"));
        assert_eq!(tree.remove("a/+/#", &1), None);
        assert_eq!(tree.len(), 3);
        assert_eq!(matched_keys(&tree, "a/b/c"), vec![1, 2]);
        assert_eq!(matched_keys(&tree, "a/b"), vec![1, 1, 2]);
        assert_eq!(tree.remove("a/+/#", &2), Some("y"));
        assert_eq!(tree.remove("a/+", &1), Some("w"));
        assert_eq!(tree.remove("#", &1), Some("h"));
        assert!(tree.is_empty());
        assert_eq!(tree.node_count(), 1);
        assert_eq!(format!("{tree:?}"), "TopicTree { len: 0, .. }");
    }

    #[test]
    fn remove_keeps_nodes_still_in_use() {
        let mut tree = TopicTree::new();
        tree.insert("a/b/c", 1, ());
        tree.insert("a/b/c/d", 1, ());
        tree.insert("a/b/#", 1, ());
        tree.insert("a/+/c", 1, ());
        assert_eq!(tree.node_count(), 7);
        assert_eq!(tree.remove("a/b/c", &1), Some(()));
        assert_eq!(tree.node_count(), 7);
        assert_eq!(tree.remove("a/b/c/d", &1), Some(()));
        assert_eq!(tree.node_count(), 5);
        assert_eq!(tree.remove("a/b/#", &1), Some(()));
        assert_eq!(tree.node_count(), 4);
        assert_eq!(matched_keys(&tree, "a/x/c"), vec![1]);
        assert_eq!(tree.remove("a/+/c", &1), Some(()));
        assert_eq!(tree.node_count(), 1);
    }

    #[test]
    fn churn_prunes_nodes() {
        let mut tree = TopicTree::new();
        let filter = |i: u64| match i % 4 {
            0 => format!("dev/{i}/state"),
            1 => format!("dev/+/{i}/#"),
            2 => format!("{i}/+/x"),
            _ => format!("+/{}/{i}", i % 7),
        };
        for i in 0..10_000 {
            assert_eq!(tree.insert(&filter(i), i, i * 2), None);
        }
        assert_eq!(tree.len(), 10_000);
        assert!(tree.node_count() > 10_000);
        for i in 0..10_000 {
            assert_eq!(tree.remove(&filter(i), &i), Some(i * 2));
        }
        assert!(tree.is_empty());
        assert_eq!(tree.node_count(), 1);
    }

    #[test]
    fn for_each_rebuilds_filters() {
        let mut tree = TopicTree::new();
        let filters = ["#", "+", "/", "/#", "+/#", "a//+/#", "a/b", "$SYS/#", "a/b/c"];
        for (i, filter) in filters.iter().enumerate() {
            tree.insert(filter, i, ());
        }
        let mut seen = BTreeSet::new();
        tree.for_each(|filter, key, ()| assert!(seen.insert((filter.to_owned(), *key))));
        let expected: BTreeSet<_> = filters.iter().enumerate().map(|(i, f)| (f.to_string(), i)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn deep_filters_do_not_overflow_the_stack() {
        let levels = MAX_TOPIC_LEN / 2;
        let plus = vec!["+"; levels].join("/");
        let empty = "/".repeat(levels - 1);
        let mixed = format!("{}/#", vec!["a"; levels - 1].join("/"));
        let mut tree = TopicTree::new();
        tree.insert(&plus, 1, ());
        tree.insert(&empty, 2, ());
        tree.insert(&mixed, 3, ());
        assert_eq!(tree.node_count(), 3 * levels);
        assert_eq!(matched_keys(&tree, &empty), vec![1, 2]);
        assert_eq!(matched_keys(&tree, &vec!["a"; levels].join("/")), vec![1, 3]);
        let mut count = 0;
        tree.for_each(|_, _, _| count += 1);
        assert_eq!(count, 3);
        assert_eq!(tree.remove(&empty, &2), Some(()));
        assert_eq!(tree.remove(&plus, &1), Some(()));
        assert_eq!(tree.node_count(), levels);
        // Dropping the remaining deep chain must not recurse.
        drop(tree);
    }

    fn topic_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "$c", ""]), 1..=5)
            .prop_map(|levels| levels.join("/"))
            .prop_filter("valid topic name", |t| valid_topic_name(t))
    }

    fn filter_strategy() -> impl Strategy<Value = String> {
        (prop::collection::vec(prop::sample::select(vec!["a", "b", "$c", "", "+"]), 0..=5), any::<bool>())
            .prop_map(|(mut levels, hash)| {
                if hash || levels.is_empty() {
                    levels.push("#");
                }
                levels.join("/")
            })
            .prop_filter("valid topic filter", |f| valid_topic_filter(f))
    }

    proptest! {
        #[test]
        fn tree_agrees_with_reference_matcher(
            filters in prop::collection::vec(filter_strategy(), 1..60),
            topics in prop::collection::vec(topic_strategy(), 1..20),
            removed in prop::collection::vec(any::<bool>(), 60),
        ) {
            let mut tree = TopicTree::new();
            for (i, filter) in filters.iter().enumerate() {
                prop_assert_eq!(tree.insert(filter, i as u64, i), None);
            }
            prop_assert_eq!(tree.len(), filters.len());

            let check = |tree: &TopicTree<u64, usize>, live: &dyn Fn(usize) -> bool| -> Result<(), TestCaseError> {
                for topic in &topics {
                    let expected: Vec<u64> = (0..filters.len())
                        .filter(|&i| live(i) && matches(&filters[i], topic))
                        .map(|i| i as u64)
                        .collect();
                    prop_assert_eq!(matched_keys(tree, topic), expected, "topic {:?}", topic);
                }
                let mut all = BTreeSet::new();
                tree.for_each(|filter, key, value| {
                    assert_eq!(*key as usize, *value);
                    assert!(all.insert((filter.to_owned(), *key)));
                });
                let expected: BTreeSet<_> = (0..filters.len())
                    .filter(|&i| live(i))
                    .map(|i| (filters[i].clone(), i as u64))
                    .collect();
                prop_assert_eq!(all, expected);
                Ok(())
            };
            check(&tree, &|_| true)?;

            for (i, filter) in filters.iter().enumerate() {
                if removed[i] {
                    prop_assert_eq!(tree.remove(filter, &(i as u64)), Some(i));
                    prop_assert_eq!(tree.remove(filter, &(i as u64)), None);
                }
            }
            let live_count = (0..filters.len()).filter(|&i| !removed[i]).count();
            prop_assert_eq!(tree.len(), live_count);
            for (i, filter) in filters.iter().enumerate() {
                let expected = (!removed[i]).then_some(i);
                prop_assert_eq!(tree.get(filter, &(i as u64)).copied(), expected);
            }
            check(&tree, &|i| !removed[i])?;

            for (i, filter) in filters.iter().enumerate() {
                if !removed[i] {
                    prop_assert_eq!(tree.remove(filter, &(i as u64)), Some(i));
                }
            }
            prop_assert!(tree.is_empty());
            prop_assert_eq!(tree.node_count(), 1);
        }
    }
}
