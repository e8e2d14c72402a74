//! The rules the two id tables (Inodes, Handles) share, on any table with the fields `slots`
//! (each slot has `kind` with a `.free` value and a u32 `generation`), `used`, `free_list` and
//! `free_count`: how a slot is handed out, how a guest id finds it, how it goes back.
//! Only `slots[0..used]` is initialized: a slot is set to its default when first handed out,
//! so the untouched part of a table costs no memory. An id is (generation << 32) | (index + 1).

/// A free slot's index: the last one released, else the first never used (initialized to
/// its default, so low indexes come first); null when every slot is taken.
pub fn take(table: anytype) ?u32 {
    if (table.free_count > 0) {
        table.free_count -= 1;
        return table.free_list[table.free_count];
    }
    if (table.used == table.slots.len) return null;
    table.slots[table.used] = .{};
    table.used += 1;
    return table.used - 1;
}

/// Puts slot `index` (already reset to free) back for reuse.
pub fn release(table: anytype, index: u32) void {
    table.free_list[table.free_count] = index;
    table.free_count += 1;
}

/// The live slot a guest id names, or null: index 0, an index never handed out, a free slot
/// and a wrong generation are all refused before any slot is used.
pub fn find(table: anytype, id: u64) ?u32 {
    const low: u32 = @truncate(id);
    if (low == 0 or low > table.used) return null;
    const s = &table.slots[low - 1];
    if (s.kind == .free or s.generation != @as(u32, @truncate(id >> 32))) return null;
    return low - 1;
}
