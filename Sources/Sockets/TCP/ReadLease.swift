#if SOCKETS_PLATFORM_SUPPORTED
import Synchronization

/// Buffered input lent to a ``TCPConnection/bytes`` or ``TCPConnection/lines`` iterator, so that iterating
/// costs no actor call per byte or line.
///
/// The connection gives the iterator a copy of the first bytes of its input buffer, under a lease number, and
/// leaves them in the buffer. The iterator takes them one at a time (a byte, or a whole line), counting each
/// in ``word`` with one compare-and-exchange: `lease number << 32 | bytes taken`. Before the connection reads
/// its input in any other way, it *settles*: it swaps the word to zero, drops the bytes the count says were
/// taken, and so revokes the lease; the iterator's next compare-and-exchange then fails, and it asks the
/// connection for a new lease. So each byte is handed out exactly once, and an iteration that stops early (a
/// `break`, a cancelled task) leaves every byte it did not yield in the buffer for the next read.
@usableFromInline
final class ReadLease: Sendable {
    /// `lease number << 32 | bytes taken`; zero when no lease is out. (`@usableFromInline`, like the iterators'
    /// fast paths that use it: inlined into the caller, a byte costs no function call.)
    @usableFromInline let word = Atomic<UInt64>(0)

    /// What the connection lends: the lease's number and the bytes.
    @usableFromInline
    struct Loan: Sendable {
        @usableFromInline let number: UInt32
        @usableFromInline let bytes: [UInt8]
    }

    /// Counts `count` more bytes as taken from `loan`, of which `taken` were taken before. `false`: the lease
    /// was revoked, and nothing is counted.
    @inlinable
    func take(_ count: Int, from loan: Loan, after taken: Int) -> Bool {
        let expected = UInt64(loan.number) << 32 | UInt64(taken)
        return word.compareExchange(
            expected: expected, desired: expected + UInt64(count),
            ordering: .acquiringAndReleasing
        ).exchanged
    }

    /// Starts lease `number` with nothing taken.
    func start(_ number: UInt32) {
        word.store(UInt64(number) << 32, ordering: .releasing)
    }

    /// Ends the lease numbered `number`: returns how many of its bytes were taken.
    func settle(_ number: UInt32) -> Int {
        let word = word.exchange(0, ordering: .acquiringAndReleasing)
        return word >> 32 == UInt64(number) ? Int(word & 0xffff_ffff) : 0
    }
}
#endif
