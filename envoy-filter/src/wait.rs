//! What the root context and the requests of one worker share: the waiting
//! list ([`Waiters`]) and the way back from the root context to a request.
//!
//! A request that waited resumes from the root context's tick, not from one of
//! its own callbacks: the root sets Envoy's effective context to the request
//! before acting for it, and the look-ups the request then sends are answered
//! to the root context (the SDK files a call under the context that was
//! running), which hands each answer on to its request.

use crate::exchange::Flow;
use crate::host;
use crate::waiters::{Turn, Waiters};
use proxy_wasm::hostcalls;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

/// The shared state of one worker.
#[derive(Default)]
pub struct Room {
    /// The requests waiting for a lock.
    pub waiters: Waiters,
    /// Every live request, by context id.
    flows: HashMap<u32, Weak<RefCell<Flow>>>,
    /// The request of every look-up in flight, by call token.
    calls: HashMap<u32, u32>,
}

/// The room, shared by the root context and its requests.
pub type SharedRoom = Rc<RefCell<Room>>;

impl Room {
    /// Registers the request of `context`.
    pub fn enter(&mut self, context: u32, flow: &Rc<RefCell<Flow>>) {
        self.flows.insert(context, Rc::downgrade(flow));
    }

    /// Forgets the request of `context`: it waits no more, and answers to its
    /// look-ups are dropped.
    pub fn leave(&mut self, context: u32) {
        self.waiters.remove(context);
        self.calls.retain(|_, owner| *owner != context);
        self.flows.remove(&context);
    }

    /// Stops waiting for `context` (its stream ended), keeping it registered.
    pub fn stop_waiting(&mut self, context: u32) {
        self.waiters.remove(context);
    }

    /// Files look-up `token` under `context`.
    pub fn call_sent(&mut self, token: u32, context: u32) {
        self.calls.insert(token, context);
    }

    /// Takes look-up `token` off the list.
    pub fn call_done(&mut self, token: u32) -> Option<u32> {
        self.calls.remove(&token)
    }

    fn flow(&self, context: u32) -> Option<Rc<RefCell<Flow>>> {
        self.flows.get(&context).and_then(Weak::upgrade)
    }
}

/// One tick of the root context `root`: every waiter tries its lock again
/// (`ttl_ms` for a lock taken); those whose wait ended go on. The tick stops
/// when nobody waits.
pub fn tick(room: &SharedRoom, root: u32, ttl_ms: u64) {
    let now = host::now_ms();
    let ended = match room.try_borrow_mut() {
        Ok(mut room) => room.waiters.turn(now, |keys| host::acquire(keys, ttl_ms)),
        Err(_) => return,
    };
    for (context, turn) in ended {
        let flow = room.try_borrow().ok().and_then(|room| room.flow(context));
        let resumed = match flow {
            Some(flow) if hostcalls::set_effective_context(context).is_ok() => {
                match flow.try_borrow_mut() {
                    Ok(mut flow) => {
                        flow.waited(turn.clone());
                        true
                    }
                    Err(_) => false,
                }
            }
            _ => false,
        };
        if let (false, Turn::Acquired(Some(owner))) = (resumed, turn) {
            host::release(owner);
        }
    }
    let _ = hostcalls::set_effective_context(root);
    if room.try_borrow().is_ok_and(|room| room.waiters.is_empty()) {
        host::tick(false);
    }
}

/// An answer to look-up `token` that reached the root context: handed on to
/// the request that sent it (if it is still there).
pub fn call_answered(room: &SharedRoom, token: u32, body_size: usize) {
    let flow = room.try_borrow_mut().ok().and_then(|mut room| {
        let context = room.call_done(token)?;
        Some((context, room.flow(context)?))
    });
    let Some((context, flow)) = flow else {
        return;
    };
    if hostcalls::set_effective_context(context).is_ok()
        && let Ok(mut flow) = flow.try_borrow_mut()
    {
        flow.call_answered(token, body_size);
    }
}
