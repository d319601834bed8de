//! The archive the crate links: the linked vendor objects with their symbols renamed, and a
//! fresh symbol index.

use std::collections::BTreeSet;

use object::build::elf::Builder;

use crate::member::{Member, is_defined, is_global};
use crate::names::{self, KERNEL_PREFIX, PREFIX};

/// `members` that are `linked`, renamed: their calls to taken-over functions to this
/// crate's (`PREFIX`), and every symbol the archive defines for its objects to
/// `KERNEL_PREFIX` + its name, references included.
pub fn rewrite(members: Vec<Member<'_>>, linked: &[bool]) -> Result<Vec<u8>, String> {
    let members: Vec<Member<'_>> = members
        .into_iter()
        .zip(linked)
        .filter(|(_, linked)| **linked)
        .map(|(member, _)| member)
        .collect();
    let own: BTreeSet<Vec<u8>> = members
        .iter()
        .flat_map(Member::exports)
        .map(<[u8]>::to_vec)
        .collect();
    let mut written = Vec::new();
    for mut member in members {
        rename(&member.name, &mut member.object, &own);
        let mut bytes = Vec::new();
        member
            .object
            .write(&mut bytes)
            .map_err(|error| format!("member `{}`: {error}", member.name))?;
        written.push(ar_archive_writer::NewArchiveMember::new(
            bytes,
            &ar_archive_writer::DEFAULT_OBJECT_READER,
            member.name,
        ));
    }
    let mut out = std::io::Cursor::new(Vec::new());
    ar_archive_writer::write_archive_to_stream(
        &mut out,
        &written,
        ar_archive_writer::ArchiveKind::Gnu,
        false,
        None,
    )
    .map_err(|error| format!("cannot write the rewritten archive: {error}"))?;
    Ok(out.into_inner())
}

/// Renames the symbols of `member`, whose object is `object`.
fn rename(member: &str, object: &mut Builder<'_>, own: &BTreeSet<Vec<u8>>) {
    for symbol in object.symbols.iter_mut() {
        let renamed = if !is_defined(symbol) && names::taken_over(member, &symbol.name).is_some() {
            [PREFIX.as_bytes(), &symbol.name].concat()
        } else if (is_global(symbol) || !is_defined(symbol)) && own.contains(&*symbol.name) {
            [KERNEL_PREFIX.as_bytes(), &symbol.name].concat()
        } else {
            continue;
        };
        symbol.name = renamed.into();
    }
}
