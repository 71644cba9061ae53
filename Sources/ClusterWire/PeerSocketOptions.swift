import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Socket settings both ends of a peer connection use.
enum PeerSocketOptions {
    /// How long sent data may stay unacknowledged before the kernel drops the
    /// connection (TCP_USER_TIMEOUT, Linux): a peer that vanished without a
    /// reset is noticed in this time instead of after minutes of
    /// retransmissions, and the next request reconnects.
    static let userTimeoutMilliseconds = 3000

    /// TCP_USER_TIMEOUT where the platform has it.
    static var userTimeout: ChannelOptions.Types.SocketOption? {
        #if os(Linux)
            ChannelOptions.Types.SocketOption(
                level: NIOBSDSocket.OptionLevel(rawValue: CInt(IPPROTO_TCP)),
                name: NIOBSDSocket.Option(rawValue: CInt(TCP_USER_TIMEOUT)))
        #else
            nil
        #endif
    }
}
