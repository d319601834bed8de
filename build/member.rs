//! One object of the vendor archive, read for editing.

use object::build::elf::{Builder, Symbol};
use object::read::archive::ArchiveFile;

pub struct Member<'data> {
    /// Its name in the archive (`bus_core.o`).
    pub name: String,
    /// The object as the vendor built it.
    pub bytes: &'data [u8],
    pub object: Builder<'data>,
}

/// Every object of the archive `data`, in archive order.
pub fn read_all(data: &[u8]) -> Result<Vec<Member<'_>>, String> {
    let archive = ArchiveFile::parse(data).map_err(|error| format!("not an archive: {error}"))?;
    let mut members = Vec::new();
    for member in archive.members() {
        let member = member.map_err(|error| format!("unreadable member: {error}"))?;
        let name = String::from_utf8_lossy(member.name()).into_owned();
        let bytes = member
            .data(data)
            .map_err(|error| format!("member `{name}`: {error}"))?;
        let object = Builder::read(bytes).map_err(|error| format!("member `{name}`: {error}"))?;
        members.push(Member {
            name,
            bytes,
            object,
        });
    }
    Ok(members)
}

impl Member<'_> {
    /// The names it defines for other objects.
    pub fn exports(&self) -> impl Iterator<Item = &[u8]> {
        self.object
            .symbols
            .iter()
            .filter(|symbol| is_defined(symbol) && is_global(symbol))
            .map(|symbol| &*symbol.name)
    }

    /// The names it refers to and does not define: what it calls (or reads) elsewhere.
    pub fn imports(&self) -> impl Iterator<Item = &[u8]> {
        self.object
            .symbols
            .iter()
            .filter(|symbol| !is_defined(symbol) && !symbol.name.is_empty())
            .map(|symbol| &*symbol.name)
    }
}

pub fn is_defined(symbol: &Symbol<'_>) -> bool {
    symbol.section.is_some() || symbol.st_shndx != object::elf::SHN_UNDEF
}

pub fn is_global(symbol: &Symbol<'_>) -> bool {
    symbol.st_info >> 4 != object::elf::STB_LOCAL
}
