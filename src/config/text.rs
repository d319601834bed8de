//! Configuration JSON from elsewhere (a caller's text, a file), checked against the rules
//! the writer follows, plus JSON syntax and types.

use super::pool::LIMIT_NAMES;
use super::writer::{check_launch_total, check_worker_total};
use super::{ConfigError, PoolField, PoolIdText, Unsupported};
use crate::json::{self, JStr, Kind, Scanner};
use crate::launch::{LaunchTable, Stderr, launch_bytes};
use crate::limits::MAX_WORKERS;

/// Notes where the value of the member named `name` (its key at `at`) starts, in `slot`,
/// the scanner standing at that value: a member the document repeats is refused, since
/// readers disagree on which of two counts.
pub(super) fn note_member(
    sc: &mut Scanner<'_>,
    at: usize,
    slot: Option<(&mut Option<usize>, &'static str)>,
) -> Result<(), ConfigError> {
    let Some((slot, name)) = slot else {
        return Ok(());
    };
    if slot.is_some() {
        return Err(ConfigError::DuplicateKey {
            offset: at,
            key: name,
        });
    }
    sc.peek_kind();
    *slot = Some(sc.offset());
    Ok(())
}

pub(super) fn syntax(error: json::Error) -> ConfigError {
    match error {
        json::Error::Syntax { offset, expected } => ConfigError::InvalidJson { offset, expected },
        json::Error::TooDeep { offset } => ConfigError::TooDeep {
            offset,
            limit: json::MAX_DEPTH,
        },
    }
}

/// Marks a known key as seen; a second sighting is an error.
fn once(seen: &mut bool, offset: usize, key: &'static str) -> Result<(), ConfigError> {
    if *seen {
        return Err(ConfigError::DuplicateKey { offset, key });
    }
    *seen = true;
    Ok(())
}

/// A whole configuration document as bytes: UTF-8, then [`check_json`].
pub(super) fn check_text_document(bytes: &[u8]) -> Result<(), ConfigError> {
    let text = core::str::from_utf8(bytes).map_err(|e| ConfigError::InvalidJson {
        offset: e.valid_up_to(),
        expected: "valid UTF-8",
    })?;
    check_json(text)
}

/// Syntax first (so a broken document is reported as such), then the kernel's rules, in
/// document order.
fn check_json(text: &str) -> Result<(), ConfigError> {
    json::validate(text).map_err(syntax)?;
    let mut sc = Scanner::new(text);
    if sc.peek_kind() != Some(Kind::Object) {
        return Err(ConfigError::NotAnObject);
    }
    sc.enter();
    let (mut pools, mut limits) = (false, false);
    let mut first = true;
    while let Some((key, at)) = sc.next_key(first).map_err(syntax)? {
        first = false;
        if key.is_key("pools") {
            once(&mut pools, at, "pools")?;
            check_json_pools(&mut sc, text)?;
        } else if key.is_key("limits") {
            once(&mut limits, at, "limits")?;
            check_json_limits(&mut sc)?;
        } else {
            sc.skip_value(1).map_err(syntax)?;
        }
    }
    if !pools {
        return Err(ConfigError::MissingPools);
    }
    Ok(())
}

/// What the bus needs to know of a document [`check_json`] accepted, read in one walk:
/// calls `each` with every pool's id and instance count, in document order, and returns
/// `limits.max_input_buffer` if set (anything unexpected ends the walk early).
pub(crate) fn layout(
    text: &str,
    mut each: impl FnMut(PoolIdText, u32),
    launch: &mut LaunchTable,
) -> Option<u32> {
    let mut sc = Scanner::new(text);
    if sc.peek_kind() != Some(Kind::Object) {
        return None;
    }
    sc.enter();
    let mut input_limit = None;
    let mut first = true;
    while let Ok(Some((key, _))) = sc.next_key(first) {
        first = false;
        if key.is_key("pools") {
            sc.enter();
            let mut item = true;
            while let Ok(true) = sc.next_item(item) {
                item = false;
                let members = PoolMembers::scan(&mut sc).ok()?;
                let id = members.id.and_then(|at| string_at(text, at).ok().flatten());
                let instances = members.instances.and_then(|at| {
                    let mut sc = Scanner::at(text, at);
                    json::parse_u32(sc.number().ok()?)
                });
                if let (Some(id), Some(instances)) = (id, instances) {
                    each(PoolIdText::from_chars(id.chars()), instances);
                    launch.begin_pool(instances);
                    fill_launch(text, id, &members, launch);
                }
            }
        } else if key.is_key("limits") {
            sc.enter();
            let mut first = true;
            while let Ok(Some((key, _))) = sc.next_key(first) {
                first = false;
                if key.is_key("max_input_buffer") {
                    input_limit = json::parse_u32(sc.number().ok()?);
                } else {
                    sc.skip_value(2).ok()?;
                }
            }
        } else {
            sc.skip_value(1).ok()?;
        }
    }
    input_limit
}

/// Calls `each` with the id of every pool of a JSON configuration, in document order,
/// for a host that serves one pool only and must refuse a document naming more. Meant
/// for a document [`Config::normalize`](super::Config::normalize) or
/// [`Config::from_json`](super::Config::from_json) accepted: the walk ends early at
/// anything unexpected, and a pool without a string `id` is skipped.
pub fn pool_ids(text: &str, mut each: impl FnMut(PoolIdText)) {
    let mut sc = Scanner::new(text);
    if sc.peek_kind() != Some(Kind::Object) {
        return;
    }
    sc.enter();
    let mut first = true;
    while let Ok(Some((key, _))) = sc.next_key(first) {
        first = false;
        if !key.is_key("pools") {
            if sc.skip_value(1).is_err() {
                return;
            }
            continue;
        }
        if sc.peek_kind() != Some(Kind::Array) {
            return;
        }
        sc.enter();
        let mut item = true;
        while let Ok(true) = sc.next_item(item) {
            item = false;
            let Ok(members) = PoolMembers::scan(&mut sc) else {
                return;
            };
            if let Some(id) = members.id.and_then(|at| string_at(text, at).ok().flatten()) {
                each(PoolIdText::from_chars(id.chars()));
            }
        }
        return;
    }
}

/// Offsets of the values of the pool keys the kernel reads.
#[derive(Default)]
struct PoolMembers {
    id: Option<usize>,
    command: Option<usize>,
    args: Option<usize>,
    instances: Option<usize>,
    env: Option<usize>,
    inherit_env: Option<usize>,
    cwd: Option<usize>,
    stderr: Option<usize>,
}

impl PoolMembers {
    /// Reads one pool object (the scanner is at its `{`), up to and including its `}`.
    fn scan(sc: &mut Scanner<'_>) -> Result<Self, ConfigError> {
        let mut members = Self::default();
        sc.enter();
        let mut first = true;
        while let Some((key, at)) = sc.next_key(first).map_err(syntax)? {
            first = false;
            let slot = if key.is_key("id") {
                Some((&mut members.id, "id"))
            } else if key.is_key("command") {
                Some((&mut members.command, "command"))
            } else if key.is_key("args") {
                Some((&mut members.args, "args"))
            } else if key.is_key("instances") {
                Some((&mut members.instances, "instances"))
            } else if key.is_key("env") {
                Some((&mut members.env, "env"))
            } else if key.is_key("inherit_env") {
                Some((&mut members.inherit_env, "inherit_env"))
            } else if key.is_key("cwd") {
                Some((&mut members.cwd, "cwd"))
            } else if key.is_key("stderr") {
                Some((&mut members.stderr, "stderr"))
            } else {
                None
            };
            note_member(sc, at, slot)?;
            // Inside the top object, `pools` and this pool: three levels.
            sc.skip_value(3).map_err(syntax)?;
        }
        Ok(members)
    }
}

/// The scanner is at the value of `pools`.
fn check_json_pools(sc: &mut Scanner<'_>, text: &str) -> Result<(), ConfigError> {
    if sc.peek_kind() != Some(Kind::Array) {
        return Err(ConfigError::PoolsNotArray);
    }
    sc.enter();
    let mut index = 0;
    let mut workers = 0u64;
    let mut launch = 0usize;
    let mut ids = SeenIds::new();
    while sc.next_item(index == 0).map_err(syntax)? {
        if sc.peek_kind() != Some(Kind::Object) {
            return Err(ConfigError::PoolNotObject { pool: index });
        }
        let members = PoolMembers::scan(sc)?;
        workers += u64::from(check_json_pool(text, &mut ids, index, &members)?);
        // Every pool has at least one instance, so this stops within the first 257 pools,
        // which bounds the ids `SeenIds` keeps.
        check_worker_total(workers)?;
        launch += check_json_launch(text, index, &members)?;
        check_launch_total(launch)?;
        index += 1;
    }
    if index == 0 {
        return Err(ConfigError::NoPools);
    }
    Ok(())
}

/// A string member, or why not.
fn string_at(text: &str, at: usize) -> Result<Option<JStr<'_>>, ConfigError> {
    let mut sc = Scanner::at(text, at);
    if sc.peek_kind() != Some(Kind::String) {
        return Ok(None);
    }
    sc.string().map(Some).map_err(syntax)
}

/// The JSON counterpart of [`check_text`]: no NUL, then no escape the kernel would pass on
/// undecoded (raw control characters are not JSON, so the scanner has refused them already).
fn check_json_text(
    text: JStr<'_>,
    pool: usize,
    id: PoolIdText,
    field: PoolField,
) -> Result<(), ConfigError> {
    if text.has_nul() {
        return Err(ConfigError::NulByte { pool, id, field });
    }
    if let Some((letter, c)) = text.undecoded_escape() {
        let found = match letter {
            b'u' => Unsupported::UnicodeEscape(c),
            _ => Unsupported::Escape(char::from(letter)),
        };
        return Err(ConfigError::UnsupportedCharacter {
            pool,
            id,
            field,
            found,
        });
    }
    Ok(())
}

/// The same checks as [`check_pools`] for one pool of a JSON document.
/// Returns the pool's instance count.
fn check_json_pool(
    text: &str,
    ids: &mut SeenIds,
    index: usize,
    members: &PoolMembers,
) -> Result<u32, ConfigError> {
    let Some(at) = members.id else {
        return Err(ConfigError::MissingId { pool: index });
    };
    let Some(raw_id) = string_at(text, at)? else {
        return Err(ConfigError::IdNotString { pool: index });
    };
    if raw_id.is_empty() {
        return Err(ConfigError::EmptyId { pool: index });
    }
    let id = PoolIdText::from_chars(raw_id.chars());
    check_json_text(raw_id, index, id, PoolField::Id)?;
    // Every escape left is one the kernel decodes too, so equal decoded values are equal
    // to it.
    if let Some(first) = ids.find_or_add(text, at, raw_id) {
        return Err(ConfigError::DuplicateId {
            first,
            second: index,
            id,
        });
    }

    let wrong = |field| ConfigError::WrongType {
        pool: index,
        id,
        field,
    };
    let Some(at) = members.command else {
        return Err(ConfigError::MissingField {
            pool: index,
            id,
            field: PoolField::Command,
        });
    };
    let command = string_at(text, at)?.ok_or(wrong(PoolField::Command))?;
    if command.is_empty() {
        return Err(ConfigError::EmptyCommand { pool: index, id });
    }
    check_json_text(command, index, id, PoolField::Command)?;

    if let Some(at) = members.args {
        let mut sc = Scanner::at(text, at);
        if sc.peek_kind() != Some(Kind::Array) {
            return Err(wrong(PoolField::Args));
        }
        sc.enter();
        let mut arg = 0;
        while sc.next_item(arg == 0).map_err(syntax)? {
            if sc.peek_kind() != Some(Kind::String) {
                return Err(wrong(PoolField::Arg(arg)));
            }
            let text = sc.string().map_err(syntax)?;
            check_json_text(text, index, id, PoolField::Arg(arg))?;
            arg += 1;
        }
    }

    let Some(at) = members.instances else {
        return Err(ConfigError::MissingField {
            pool: index,
            id,
            field: PoolField::Instances,
        });
    };
    let mut sc = Scanner::at(text, at);
    if sc.peek_kind() != Some(Kind::Number) {
        return Err(wrong(PoolField::Instances));
    }
    match json::parse_u32(sc.number().map_err(syntax)?) {
        None => Err(wrong(PoolField::Instances)),
        Some(0) => Err(ConfigError::ZeroInstances { pool: index, id }),
        Some(instances) => Ok(instances),
    }
}

/// The ids of the pools read so far, each as where it is in the text and a hash of its
/// decoded value: a new id is compared with an earlier one's text only when their hashes
/// match, so reading the pools costs their length, not their number times the document's.
/// No heap: a bus has at most one pool per worker (see `check_json_pools`).
struct SeenIds {
    ids: heapless::Vec<(usize, u64), { MAX_WORKERS + 1 }>,
}

impl SeenIds {
    fn new() -> Self {
        Self {
            ids: heapless::Vec::new(),
        }
    }

    /// The index of the earlier pool whose id is `id` (at `at` in `text`), or `None`,
    /// and then `id` is kept.
    fn find_or_add(&mut self, text: &str, at: usize, id: JStr<'_>) -> Option<usize> {
        let hash = id.chars().fold(0xcbf2_9ce4_8422_2325_u64, |hash, c| {
            (hash ^ u64::from(u32::from(c))).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let same = |&(earlier, earlier_hash): &(usize, u64)| {
            earlier_hash == hash
                && string_at(text, earlier)
                    .ok()
                    .flatten()
                    .is_some_and(|earlier| earlier.same(id))
        };
        let found = self.ids.iter().position(same);
        if found.is_none() {
            // Past the bound the worker total is refused anyway.
            let _ = self.ids.push((at, hash));
        }
        found
    }
}

/// The scanner is at the value of `limits`.
fn check_json_limits(sc: &mut Scanner<'_>) -> Result<(), ConfigError> {
    if sc.peek_kind() != Some(Kind::Object) {
        return Err(ConfigError::LimitsNotObject);
    }
    sc.enter();
    let mut seen = [false; LIMIT_NAMES.len()];
    let mut first = true;
    while let Some((key, at)) = sc.next_key(first).map_err(syntax)? {
        first = false;
        let known = LIMIT_NAMES
            .iter()
            .zip(seen.iter_mut())
            .find(|(name, _)| key.is_key(name));
        let Some((&name, seen)) = known else {
            sc.skip_value(2).map_err(syntax)?;
            continue;
        };
        once(seen, at, name)?;
        if sc.peek_kind() != Some(Kind::Number)
            || json::parse_u32(sc.number().map_err(syntax)?).is_none()
        {
            return Err(ConfigError::InvalidLimit { name });
        }
    }
    Ok(())
}

/// The decoded length of a string, in UTF-8 bytes.
fn decoded_len(text: JStr<'_>) -> usize {
    text.chars().map(char::len_utf8).sum()
}

/// Each `(name, value)` of an `env` object checked by [`check_json_launch`].
fn env_vars(text: &str, at: usize) -> impl Iterator<Item = (JStr<'_>, JStr<'_>)> {
    let mut sc = Scanner::at(text, at);
    sc.enter();
    let mut first = true;
    core::iter::from_fn(move || {
        let (name, _) = sc.next_key(first).ok()??;
        first = false;
        Some((name, sc.string().ok()?))
    })
}

/// A pool's launch settings (`env`, `inherit_env`, `cwd`, `stderr`), which the kernel
/// skips and the bus applies at exec. Returns the bytes they take in the bus's table.
fn check_json_launch(
    text: &str,
    index: usize,
    members: &PoolMembers,
) -> Result<usize, ConfigError> {
    let raw_id = members.id.and_then(|at| string_at(text, at).ok().flatten());
    let id = PoolIdText::from_chars(raw_id.map(JStr::chars).into_iter().flatten());
    let wrong = |field| ConfigError::WrongType {
        pool: index,
        id,
        field,
    };
    let mut env_bytes = 0;
    if let Some(at) = members.env {
        let mut sc = Scanner::at(text, at);
        if sc.peek_kind() != Some(Kind::Object) {
            return Err(wrong(PoolField::Env));
        }
        sc.enter();
        let mut var = 0;
        while let Some((name, _)) = sc.next_key(var == 0).map_err(syntax)? {
            if sc.peek_kind() != Some(Kind::String) {
                return Err(wrong(PoolField::EnvVar(var)));
            }
            let value = sc.string().map_err(syntax)?;
            if name.is_empty() || name.chars().any(|c| c == '=') {
                return Err(ConfigError::InvalidEnvName {
                    pool: index,
                    id,
                    var,
                });
            }
            if name.has_nul() || value.has_nul() {
                return Err(ConfigError::NulByte {
                    pool: index,
                    id,
                    field: PoolField::EnvVar(var),
                });
            }
            // Allocation-free: the earlier names are found again by rescanning.
            if env_vars(text, at)
                .take(var)
                .any(|(earlier, _)| earlier.same(name))
            {
                return Err(ConfigError::DuplicateEnvName {
                    pool: index,
                    id,
                    var,
                });
            }
            env_bytes += decoded_len(name) + decoded_len(value) + 2;
            var += 1;
        }
    }
    if let Some(at) = members.inherit_env {
        let mut sc = Scanner::at(text, at);
        if sc.peek_kind() != Some(Kind::Bool) {
            return Err(wrong(PoolField::InheritEnv));
        }
    }
    let mut cwd = None;
    if let Some(at) = members.cwd {
        let dir = string_at(text, at)?.ok_or(wrong(PoolField::Cwd))?;
        if dir.is_empty() {
            return Err(ConfigError::EmptyCwd { pool: index, id });
        }
        if dir.has_nul() {
            return Err(ConfigError::NulByte {
                pool: index,
                id,
                field: PoolField::Cwd,
            });
        }
        cwd = Some(decoded_len(dir));
    }
    let stderr = match members.stderr {
        None => Stderr::Inherit,
        Some(at) => {
            let mode = string_at(text, at)?.ok_or(wrong(PoolField::Stderr))?;
            stderr_mode(mode).ok_or(ConfigError::UnknownStderr { pool: index, id })?
        }
    };
    let id_len = raw_id.map_or(0, decoded_len);
    Ok(env_bytes + launch_bytes(core::iter::empty(), cwd, stderr, id_len))
}

/// The stderr mode a JSON string names.
fn stderr_mode(name: JStr<'_>) -> Option<Stderr> {
    [Stderr::Inherit, Stderr::Tagged, Stderr::Null]
        .into_iter()
        .find(|mode| name.is_key(mode.name()))
}

/// Records the launch settings of a pool [`check_json_launch`] accepted.
fn fill_launch(text: &str, id: JStr<'_>, members: &PoolMembers, launch: &mut LaunchTable) {
    if let Some(at) = members.env {
        for (name, value) in env_vars(text, at) {
            launch.add_env(name.chars(), value.chars());
        }
    }
    if let Some(at) = members.inherit_env
        && text.get(at..).is_some_and(|rest| rest.starts_with("false"))
    {
        launch.replace_env();
    }
    if let Some(dir) = members
        .cwd
        .and_then(|at| string_at(text, at).ok().flatten())
    {
        launch.set_cwd(dir.chars());
    }
    if let Some(mode) = members
        .stderr
        .and_then(|at| string_at(text, at).ok().flatten())
        .and_then(stderr_mode)
    {
        launch.set_stderr(mode, id.chars());
    }
}
