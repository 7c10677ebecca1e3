//! The delivery filters of reference §4.6 (`skip-self`, `skip-users`, `require-sub`).

use super::{Held, Item};

/// Delivery filters of one subscription (reference §4.6); unknown names are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filters(u8);

impl Filters {
    pub(super) const SKIP_SELF: u8 = 1;
    pub(super) const SKIP_USERS: u8 = 2;
    pub(super) const REQUIRE_SUB: u8 = 4;

    /// From filter names.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Self {
        let mut bits = 0;
        for name in names {
            bits |= match name.as_ref() {
                "skip-self" => Self::SKIP_SELF,
                "skip-users" => Self::SKIP_USERS,
                "require-sub" => Self::REQUIRE_SUB,
                _ => 0,
            };
        }
        Self(bits)
    }

    pub(super) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// The §4.6 delivery filters.
pub(super) fn passes_filters(held: &Held, sub_idx: usize, item: &Item) -> bool {
    let filters = held.subs[sub_idx].filters;
    if filters == Filters::default() {
        return true;
    }
    let user = held
        .meta
        .as_ref()
        .and_then(|m| m.get("user"))
        .map(String::as_str)
        .filter(|u| !u.is_empty());
    if filters.has(Filters::SKIP_SELF) {
        if let (Some(user), Some(sender)) = (user, item.meta("sender").filter(|s| !s.is_empty())) {
            if user == sender {
                return false;
            }
        }
    }
    if filters.has(Filters::SKIP_USERS) {
        if let (Some(user), Some(list)) = (user, item.meta("skip_users")) {
            if list.split(',').any(|u| u.trim() == user) {
                return false;
            }
        }
    }
    if filters.has(Filters::REQUIRE_SUB) {
        if let Some(required) = item.meta("require_sub") {
            if !held.subs.iter().any(|s| s.unprefixed() == required) {
                return false;
            }
        }
    }
    true
}
