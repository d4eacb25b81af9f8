//! The component's allocator: a bump arena for what one call allocates, in front
//! of the standard allocator for what outlives calls.
//!
//! Everything an evaluation allocates is gone when the call is over: the
//! arguments the host lowered through `cabi_realloc`, the core request built from
//! them, the decision, and what the host lifted (freed in `post-return`). So the
//! arena hands out memory by bumping an offset, counts the blocks it has out, and
//! starts again from zero the moment that count is back to zero. A block costs a
//! few additions, and freeing costs nothing, where the general allocator
//! (`dlmalloc`) walks its bins for each of the many small strings of a request.
//!
//! What must outlive calls (the compiled policy and its resource handle) is
//! allocated while [`LongLived`] is held, and goes to the standard allocator: a
//! long-lived block in the arena would hold the count above zero for good. When
//! that happens anyway, or a call needs more than the arena holds, the blocks
//! that do not fit go to the standard allocator: slower, never wrong.
//!
//! The WebAssembly component is single-threaded (one instance runs one call at a
//! time), which is what the relaxed atomics below rely on; they are atomics only
//! so that the statics are `Sync` without more `unsafe`.

// The `GlobalAlloc` contract is `unsafe` by nature; this module is the only
// hand-written `unsafe` of the crate, and `tests` below check its invariants.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// Bytes in the component's arena: far more than one evaluation allocates
/// (a push with 64 tags and 100 groups stays under 16 KiB).
pub const ARENA_BYTES: usize = 64 * 1024;

/// A bump arena of `N` bytes over the standard allocator.
pub struct Arena<const N: usize> {
    buffer: Buffer<N>,
    /// Offset of the first free byte.
    top: AtomicUsize,
    /// Blocks handed out and not yet freed.
    live: AtomicUsize,
    /// Set while [`LongLived`] is held: everything goes to the standard allocator.
    bypass: AtomicBool,
}

#[repr(C, align(16))]
struct Buffer<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the buffer is only reached through the allocator's methods, which the
// single-threaded component never runs concurrently; on a native target (the
// tests) each arena is used from one thread only.
unsafe impl<const N: usize> Sync for Buffer<N> {}

impl<const N: usize> Arena<N> {
    /// An empty arena.
    pub const fn new() -> Arena<N> {
        Arena {
            buffer: Buffer(UnsafeCell::new([0; N])),
            top: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            bypass: AtomicBool::new(false),
        }
    }

    fn base(&self) -> *mut u8 {
        self.buffer.0.get().cast()
    }

    /// The offset of `ptr` in the arena, if it is one of the arena's blocks.
    fn offset(&self, ptr: *mut u8) -> Option<usize> {
        let offset = (ptr as usize).checked_sub(self.base() as usize)?;
        (offset < N).then_some(offset)
    }

    /// A block of the arena for `layout`, or `None` when it does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if self.bypass.load(Relaxed) {
            return None;
        }
        let base = self.base() as usize;
        let top = self.top.load(Relaxed);
        // Align the address, not the offset: the buffer's own alignment is 16.
        let start = base
            .checked_add(top)?
            .checked_next_multiple_of(layout.align())?
            .checked_sub(base)?;
        let end = start.checked_add(layout.size())?;
        // Every block starts inside the buffer, so `offset` recognises it when it
        // is freed (a zero-sized request at the very end would not).
        if start >= N || end > N {
            return None;
        }
        self.top.store(end, Relaxed);
        self.live.fetch_add(1, Relaxed);
        // SAFETY: `start <= end <= N`, inside the buffer.
        Some(unsafe { self.base().add(start) })
    }

    /// How many arena blocks are out (for tests and the benchmark's checks).
    pub fn live_blocks(&self) -> usize {
        self.live.load(Relaxed)
    }

    /// Bytes of the arena in use, up to the last block handed out.
    pub fn used_bytes(&self) -> usize {
        self.top.load(Relaxed)
    }

    /// Sends every allocation to the standard allocator until the guard drops.
    pub fn long_lived(&self) -> LongLived<'_, N> {
        let before = self.bypass.swap(true, Relaxed);
        LongLived {
            arena: self,
            before,
        }
    }
}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Arena::new()
    }
}

/// While held, allocations outlive the call: see [`Arena::long_lived`].
pub struct LongLived<'a, const N: usize> {
    arena: &'a Arena<N>,
    before: bool,
}

impl<const N: usize> Drop for LongLived<'_, N> {
    fn drop(&mut self) {
        self.arena.bypass.store(self.before, Relaxed);
    }
}

// SAFETY: every block handed out is either a fresh, aligned, in-bounds range of
// the buffer that no other live block overlaps (the offset only moves forward
// while any block is live, and returns to zero only when none is), or comes from
// `System` and is returned to it; a pointer is told apart by its address.
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's contract on `layout` is passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.offset(ptr).is_some() {
            if self.live.fetch_sub(1, Relaxed) == 1 {
                self.top.store(0, Relaxed);
            }
        } else {
            // SAFETY: not an arena block, so `System` handed it out.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(offset) = self.offset(ptr) else {
            // SAFETY: not an arena block, so `System` handed it out.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        // The last block grows or shrinks where it is.
        let last = offset.checked_add(layout.size()) == Some(self.top.load(Relaxed));
        if let Some(end) = offset.checked_add(new_size).filter(|end| last && *end <= N) {
            self.top.store(end, Relaxed);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `GlobalAlloc::realloc`'s contract makes this layout valid.
        let grown = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`.
        let moved = unsafe { self.alloc(grown) };
        if !moved.is_null() {
            // SAFETY: both blocks are live, distinct, and at least `layout.size()` long.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::Arena;
    use std::alloc::{GlobalAlloc, Layout};

    /// A block handed out by the arena under test, with the byte it was filled with.
    struct Block {
        ptr: *mut u8,
        layout: Layout,
        fill: u8,
    }

    fn allocate(arena: &Arena<256>, size: usize, align: usize, fill: u8) -> Block {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a non-zero size (the tests use 1..) and a valid layout.
        let ptr = unsafe { arena.alloc(layout) };
        assert!(!ptr.is_null());
        assert_eq!(ptr as usize % align, 0, "misaligned block");
        // SAFETY: the block is `size` bytes, live.
        unsafe { std::ptr::write_bytes(ptr, fill, size) };
        Block { ptr, layout, fill }
    }

    fn intact(block: &Block) -> bool {
        // SAFETY: live block of `layout.size()` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(block.ptr, block.layout.size()) };
        bytes.iter().all(|b| *b == block.fill)
    }

    fn free(arena: &Arena<256>, block: Block) {
        // SAFETY: allocated by `arena` with this layout, freed once.
        unsafe { arena.dealloc(block.ptr, block.layout) }
    }

    #[test]
    fn the_arena_starts_again_when_every_block_is_freed() {
        let arena = Arena::<256>::new();
        let a = allocate(&arena, 10, 1, 1);
        let b = allocate(&arena, 20, 8, 2);
        assert_eq!(arena.live_blocks(), 2);
        assert!(arena.used_bytes() >= 30);
        free(&arena, a);
        assert!(intact(&b), "freeing one block touched another");
        assert_ne!(arena.used_bytes(), 0, "reset while a block was live");
        free(&arena, b);
        assert_eq!((arena.live_blocks(), arena.used_bytes()), (0, 0));
    }

    #[test]
    fn what_does_not_fit_goes_to_the_standard_allocator() {
        let arena = Arena::<256>::new();
        let big = allocate(&arena, 1000, 8, 7);
        assert_eq!(
            arena.live_blocks(),
            0,
            "an oversized block counted as the arena's"
        );
        assert!(intact(&big));
        free(&arena, big);
    }

    #[test]
    fn long_lived_blocks_bypass_the_arena() {
        let arena = Arena::<256>::new();
        let guard = arena.long_lived();
        let kept = allocate(&arena, 16, 8, 3);
        drop(guard);
        let call = allocate(&arena, 16, 8, 4);
        assert_eq!(arena.live_blocks(), 1);
        free(&arena, call);
        assert_eq!(
            arena.used_bytes(),
            0,
            "a long-lived block kept the arena from resetting"
        );
        assert!(intact(&kept));
        free(&arena, kept);
    }

    #[test]
    fn realloc_keeps_the_contents_in_place_or_moved() {
        let arena = Arena::<256>::new();
        let first = allocate(&arena, 8, 1, 5);
        // The last block grows in place.
        // SAFETY: `first` is live, with this layout.
        let grown = unsafe { arena.realloc(first.ptr, first.layout, 24) };
        assert_eq!(grown, first.ptr);
        let grown = Block {
            ptr: grown,
            layout: Layout::from_size_align(24, 1).unwrap(),
            fill: 5,
        };
        // SAFETY: bytes 8..24 of the grown block are ours to write.
        unsafe { std::ptr::write_bytes(grown.ptr.add(8), 5, 16) };
        let after = allocate(&arena, 8, 1, 6);
        // Not the last block any more: it moves, contents kept, into the standard
        // allocator when the arena is full.
        // SAFETY: `grown` is live, with this layout.
        let moved = unsafe { arena.realloc(grown.ptr, grown.layout, 240) };
        assert_ne!(moved, grown.ptr);
        // SAFETY: the first 24 bytes were copied.
        let kept = unsafe { std::slice::from_raw_parts(moved, 24) };
        assert!(kept.iter().all(|b| *b == 5));
        assert!(intact(&after));
        free(
            &arena,
            Block {
                ptr: moved,
                layout: Layout::from_size_align(240, 1).unwrap(),
                fill: 5,
            },
        );
        free(&arena, after);
        assert_eq!((arena.live_blocks(), arena.used_bytes()), (0, 0));
    }

    proptest::proptest! {
        /// Random allocations, reallocations and frees: live blocks never overlap,
        /// keep their contents, are aligned, and the arena is empty at the end.
        #[test]
        fn live_blocks_never_overlap(ops in proptest::collection::vec((0u8..3, 1usize..80, 0u32..4, proptest::num::usize::ANY), 1..200)) {
            let arena = Arena::<256>::new();
            let mut live: Vec<Block> = Vec::new();
            for (n, (op, size, align_log, pick)) in ops.into_iter().enumerate() {
                let fill = u8::try_from(n % 251).unwrap();
                match op {
                    0 => live.push(allocate(&arena, size, 1 << align_log, fill)),
                    1 if !live.is_empty() => {
                        let block = live.swap_remove(pick % live.len());
                        free(&arena, block);
                    }
                    _ if !live.is_empty() => {
                        let index = pick % live.len();
                        let block = &live[index];
                        // SAFETY: live block, its layout, non-zero size.
                        let ptr = unsafe { arena.realloc(block.ptr, block.layout, size) };
                        proptest::prop_assert!(!ptr.is_null());
                        let kept = size.min(block.layout.size());
                        // SAFETY: `kept` bytes were kept; the rest is ours to fill.
                        let old = unsafe { std::slice::from_raw_parts(ptr, kept) };
                        proptest::prop_assert!(old.iter().all(|b| *b == block.fill));
                        let layout = Layout::from_size_align(size, block.layout.align()).unwrap();
                        // SAFETY: the block is `size` bytes now.
                        unsafe { std::ptr::write_bytes(ptr, block.fill, size) };
                        live[index] = Block { ptr, layout, fill: block.fill };
                    }
                    _ => {}
                }
                for (i, a) in live.iter().enumerate() {
                    proptest::prop_assert!(intact(a), "block {i} was overwritten");
                    for b in &live[i + 1..] {
                        let (a0, a1) = (a.ptr as usize, a.ptr as usize + a.layout.size());
                        let (b0, b1) = (b.ptr as usize, b.ptr as usize + b.layout.size());
                        proptest::prop_assert!(a1 <= b0 || b1 <= a0, "blocks overlap");
                    }
                }
            }
            for block in live {
                free(&arena, block);
            }
            proptest::prop_assert_eq!((arena.live_blocks(), arena.used_bytes()), (0, 0));
        }
    }
}
