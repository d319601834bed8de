//! Which vendor objects a program can link: the one that defines the embedding API, and
//! every object it reaches through references.
//!
//! The others are left out of the archive the crate links, so that nothing they call can
//! ever be linked, and what they call is not checked. In both known archives those are
//! `transport_shm.o` and `transport_mqueue.o`, shared-memory and message-queue transports
//! that no object refers to: they alone call `shm_open`, `mq_open`, the POSIX semaphores,
//! `mmap` and `eventfd`.

use std::collections::BTreeMap;

use crate::member::Member;

/// The embedding API's entry point. Every function `src/sys.rs` declares is defined in the
/// same object (`bus_core.o` in both archives); one defined elsewhere would be left out
/// and fail to link, loudly, rather than link unchecked.
const ENTRY: &[u8] = b"stdio_bus_create";

/// Whether each of `members` is linked, in their order.
pub fn linked(members: &[Member<'_>]) -> Result<Vec<bool>, String> {
    let mut definer = BTreeMap::new();
    for (index, member) in members.iter().enumerate() {
        for name in member.exports() {
            definer.entry(name).or_insert(index);
        }
    }
    let Some(&entry) = definer.get(ENTRY) else {
        return Err(format!(
            "no object defines `{}`: this is not a stdio_bus kernel archive",
            String::from_utf8_lossy(ENTRY)
        ));
    };
    let mut linked = vec![false; members.len()];
    let mut pending = vec![entry];
    while let Some(index) = pending.pop() {
        if std::mem::replace(&mut linked[index], true) {
            continue;
        }
        pending.extend(
            members[index]
                .imports()
                .filter_map(|name| definer.get(name).copied()),
        );
    }
    Ok(linked)
}
