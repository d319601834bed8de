//! The vendor functions whose machine code the bus relies on, beyond the names they call,
//! and the fingerprints of that code in the archives it was checked against.
//!
//! A fingerprint is a 64-bit FNV-1a hash of one function's bytes in its section, followed
//! by each relocation in that range: its offset in the function, type, addend and target
//! name. In a relocatable object the bytes a relocation fills are placeholders, so the
//! relocations carry what the code calls and reads; the hash is the same for the same code
//! wherever the linker later puts it. The data the code reads (strings, jump tables) is not
//! part of it.

use object::read::elf::ElfFile64;
use object::{
    Architecture, Endianness, Object, ObjectSection, ObjectSymbol, RelocationFlags,
    RelocationTarget, SymbolKind,
};

use crate::member::Member;

const CRATES_IO: &str = "crates.io stdiobus-backend-native 1.1.1";
const PYPI: &str = "PyPI stdiobus 2.2.1";

/// One function the bus relies on, and the fingerprints it was checked with.
struct Relied {
    object: &'static str,
    function: &'static str,
    /// Who relies on it, for the message that refuses other code.
    relied_on_by: &'static str,
    known: &'static [Known],
}

struct Known {
    fingerprint: u64,
    architecture: Architecture,
    archives: &'static [&'static str],
}

const RELIED: &[Relied] = &[
    // Reads a connection into its buffer and delivers every complete line of that read
    // before the next one: a worker's lines are attributed to the worker read last. It
    // writes the buffer only by that read and by moving what is left of a line to the
    // front, within what it counts, and grows it only when full: the bus holds output the
    // ring has no room for past what it counts.
    Relied {
        object: "transport.o",
        function: "transport_event_handler",
        relied_on_by: "src/interpose/held.rs and the taken-over `read` (src/interpose/calls.rs)",
        known: &[
            Known {
                fingerprint: 0x1f4c_5728_844e_14af,
                architecture: Architecture::X86_64,
                archives: &[CRATES_IO, PYPI],
            },
            Known {
                fingerprint: 0x14e5_e3e9_d8f5_27b1,
                architecture: Architecture::Aarch64,
                archives: &[CRATES_IO, PYPI],
            },
        ],
    },
    // The line scan the event handler runs over the buffer (through the framing's table):
    // it reads only within the length it is given, never the held bytes past it, and
    // writes nothing.
    Relied {
        object: "framing_ndjson.o",
        function: "ndjson_extract_message",
        relied_on_by: "src/interpose/held.rs",
        known: &[
            Known {
                fingerprint: 0xc348_a00e_0d9e_c799,
                architecture: Architecture::X86_64,
                archives: &[CRATES_IO, PYPI],
            },
            Known {
                fingerprint: 0xd859_9751_cdaf_31cc,
                architecture: Architecture::Aarch64,
                archives: &[CRATES_IO, PYPI],
            },
        ],
    },
    // Frees a connection's buffer only together with the close of its descriptor, where
    // the taken-over `close` forgets the output held in it.
    Relied {
        object: "transport.o",
        function: "stdio_bus_transport_close",
        relied_on_by: "src/interpose/held.rs and the taken-over `close` (src/interpose/calls.rs)",
        known: &[
            Known {
                fingerprint: 0x51e6_e4e4_48d3_fdf8,
                architecture: Architecture::X86_64,
                archives: &[CRATES_IO, PYPI],
            },
            Known {
                fingerprint: 0x346b_976d_aafa_4474,
                architecture: Architecture::Aarch64,
                archives: &[CRATES_IO, PYPI],
            },
        ],
    },
    Relied {
        object: "transport.o",
        function: "stdio_bus_transport_remove_conn",
        relied_on_by: "src/interpose/held.rs and the taken-over `close` (src/interpose/calls.rs)",
        known: &[
            Known {
                fingerprint: 0x1a55_19aa_dfb4_a09d,
                architecture: Architecture::X86_64,
                archives: &[CRATES_IO, PYPI],
            },
            Known {
                fingerprint: 0xc0c9_240d_fd76_5458,
                architecture: Architecture::Aarch64,
                archives: &[CRATES_IO, PYPI],
            },
        ],
    },
    // Reads an event's data as a descriptor number and skips numbers outside 0..1024: the
    // bus's tagged timer, wake event and pidfds in the same epoll set; and dispatches the
    // events the taken-over `epoll_wait` adds for held output.
    Relied {
        object: "event_loop.o",
        function: "stdio_bus_event_loop_run_once",
        relied_on_by: "the taken-over `epoll_wait` (src/interpose/calls.rs)",
        known: &[
            Known {
                fingerprint: 0x5c3d_7275_54ac_955e,
                architecture: Architecture::X86_64,
                archives: &[CRATES_IO, PYPI],
            },
            Known {
                fingerprint: 0x4066_8fac_7843_210a,
                architecture: Architecture::Aarch64,
                archives: &[CRATES_IO, PYPI],
            },
        ],
    },
    // Its one call to the router's destructor is the one deferred until `destroy`
    // returns: archive A tears the transport down after it, and that still uses the
    // router.
    Relied {
        object: "bus_core.o",
        function: "stdio_bus_destroy",
        relied_on_by: "the deferred router free (src/interpose/calls.rs, resources.rs)",
        known: &[
            Known {
                fingerprint: 0x941f_baff_f607_b482,
                architecture: Architecture::X86_64,
                archives: &[CRATES_IO],
            },
            Known {
                fingerprint: 0xdcbc_e3d0_9148_9652,
                architecture: Architecture::X86_64,
                archives: &[PYPI],
            },
            Known {
                fingerprint: 0x8b72_0bf1_d657_4882,
                architecture: Architecture::Aarch64,
                archives: &[CRATES_IO],
            },
            Known {
                fingerprint: 0x21a1_5477_c9fc_2702,
                architecture: Architecture::Aarch64,
                archives: &[PYPI],
            },
        ],
    },
    // Writes the message, then its newline, to one worker's stdin, and nothing else: the
    // taken-over `write` turns the two into one `writev` to the worker the bus chose.
    Relied {
        object: "bus_core.o",
        function: "stdio_bus_ingest",
        relied_on_by: "the taken-over `write` (src/interpose/calls.rs)",
        known: &[
            Known {
                fingerprint: 0x08d3_1774_785c_4947,
                architecture: Architecture::X86_64,
                archives: &[CRATES_IO],
            },
            Known {
                fingerprint: 0x482c_2b4a_b733_6bb1,
                architecture: Architecture::X86_64,
                archives: &[PYPI],
            },
            Known {
                fingerprint: 0x1c92_8500_ca17_39c4,
                architecture: Architecture::Aarch64,
                archives: &[CRATES_IO],
            },
            Known {
                fingerprint: 0xb54e_10c3_8849_6b8e,
                architecture: Architecture::Aarch64,
                archives: &[PYPI],
            },
        ],
    },
];

/// One line for each function of [`RELIED`] whose code in `members` is not one the bus was
/// checked with, or that is missing.
pub fn check(members: &[Member<'_>]) -> Vec<String> {
    let mut problems = Vec::new();
    for relied in RELIED {
        let Some(member) = members.iter().find(|member| member.name == relied.object) else {
            problems.push(format!(
                "the archive has no `{}`, whose `{}` is relied on by {}",
                relied.object, relied.function, relied.relied_on_by
            ));
            continue;
        };
        let (architecture, fingerprint) = match fingerprint(member.bytes, relied.function) {
            Ok(found) => found,
            Err(error) => {
                problems.push(format!(
                    "`{}`: {error}; relied on by {}",
                    relied.object, relied.relied_on_by
                ));
                continue;
            }
        };
        if relied
            .known
            .iter()
            .any(|known| known.fingerprint == fingerprint)
        {
            continue;
        }
        let known: Vec<String> = relied
            .known
            .iter()
            .filter(|known| known.architecture == architecture)
            .map(|known| {
                format!(
                    "{:#018x} in {}",
                    known.fingerprint,
                    known.archives.join(" and ")
                )
            })
            .collect();
        problems.push(format!(
            "the machine code of `{}` in `{}` differs from every version the bus was checked \
             with (fingerprint {fingerprint:#018x}; known for {architecture:?}: {}); relied on \
             by {}",
            relied.function,
            relied.object,
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            },
            relied.relied_on_by,
        ));
    }
    problems
}

/// The architecture of the relocatable object `bytes`, and the fingerprint of `function`,
/// defined there.
fn fingerprint(bytes: &[u8], function: &str) -> Result<(Architecture, u64), String> {
    let file = ElfFile64::<Endianness>::parse(bytes).map_err(|error| error.to_string())?;
    let symbol = file
        .symbols()
        .find(|symbol| symbol.kind() == SymbolKind::Text && symbol.name() == Ok(function))
        .ok_or_else(|| format!("no function `{function}`"))?;
    let section = symbol
        .section_index()
        .and_then(|index| file.section_by_index(index).ok())
        .ok_or_else(|| format!("`{function}` is in no section"))?;
    let data = section.data().map_err(|error| error.to_string())?;
    let range = symbol.address()..symbol.address().saturating_add(symbol.size());
    let code = usize::try_from(range.start)
        .ok()
        .zip(usize::try_from(range.end).ok())
        .and_then(|(start, end)| data.get(start..end))
        .ok_or_else(|| format!("`{function}` lies outside its section"))?;
    let mut hash = Fnv1a::new();
    hash.write(code);
    let mut relocations: Vec<_> = section
        .relocations()
        .filter(|(offset, _)| range.contains(offset))
        .collect();
    relocations.sort_by_key(|(offset, _)| *offset);
    for (offset, relocation) in relocations {
        hash.write(&(offset - range.start).to_le_bytes());
        if let RelocationFlags::Elf { r_type } = relocation.flags() {
            hash.write(&r_type.to_le_bytes());
        }
        hash.write(&relocation.addend().to_le_bytes());
        let target = match relocation.target() {
            RelocationTarget::Symbol(index) => file.symbol_by_index(index).ok().and_then(|s| {
                match s.kind() {
                    // A section's symbol has no name of its own.
                    SymbolKind::Section => s
                        .section_index()
                        .and_then(|index| file.section_by_index(index).ok())
                        .and_then(|section| section.name_bytes().ok()),
                    _ => s.name_bytes().ok(),
                }
            }),
            RelocationTarget::Section(index) => file
                .section_by_index(index)
                .ok()
                .and_then(|section| section.name_bytes().ok()),
            _ => None,
        };
        hash.write(target.unwrap_or_default());
        hash.write(&[0]);
    }
    Ok((file.architecture(), hash.finish()))
}

/// 64-bit FNV-1a: small, and stable across Rust releases, as std's hashers are not.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
