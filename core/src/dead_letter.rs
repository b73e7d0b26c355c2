//! The dead-letter list (`bufferList:dead`): its bounds and the Lua function that files a
//! message there within them. Shared by the dispatcher's transactions (`store::Op::DeadLetter`)
//! and the subscribers' push script (`feed::pusher`), so both keep the list the same way; its
//! own module so that neither the store nor the subscribers depend on the buffer's queue.

/// Dead letters kept at most (oldest dropped first)...
pub const DEAD_LETTER_KEEP: isize = 100_000;
/// ...and the most bytes they may hold in all, so a few huge messages cannot fill Redis.
pub const DEAD_LETTER_MAX_BYTES: usize = 64 << 20;
/// A dead letter's reason is cut to this many characters (a 5 MB topic name must not make a
/// 5 MB reason); the message itself is kept whole, for inspection and requeueing.
pub const REASON_MAX_CHARS: usize = 500;

/// The Lua function that files a dead letter within both bounds, keeping the list's size in a
/// counter key beside it (so no push has to read the list); a list found empty resets the
/// counter, and a counter that is missing (a list from an older version) is computed once.
/// A macro so the scripts that use it (here and the subscribers' push) can be literals.
macro_rules! dead_push_fn {
    () => {
        r"
local function push_dead(list, counter, value, max_n, max_b)
  if redis.call('EXISTS', counter) == 0 then
    local total = 0
    for _, v in ipairs(redis.call('LRANGE', list, 0, -1)) do total = total + #v end
    redis.call('SET', counter, total)
  end
  local n = redis.call('LPUSH', list, value)
  local total
  if n == 1 then
    total = #value
    redis.call('SET', counter, total)
  else
    total = redis.call('INCRBY', counter, #value)
  end
  while n > 1 and (n > max_n or total > max_b) do
    local old = redis.call('RPOP', list)
    if not old then break end
    total = redis.call('DECRBY', counter, #old)
    n = n - 1
  end
end
"
    };
}
pub(crate) use dead_push_fn;

/// [`crate::store::Op::DeadLetter`]: KEYS list, counter; ARGV value, max entries, max bytes.
pub const DEAD_PUSH_LUA: &str = concat!(
    dead_push_fn!(),
    "push_dead(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))"
);
