import Testing

@testable import TesseraNode

/// The `[limits]` table: defaults, values, and refusals naming the key.
@Suite struct LimitsConfigurationTests {
    @Test func absentTableGivesTheDefaults() throws {
        let limits = try parse("[node]\nlog_level = \"info\"").limits
        #expect(limits.loginTimeout == .seconds(15))
        #expect(limits.maxConnections == 1024)
        #expect(limits.maxConnectionsPerInitiatorAddress == 64)
        #expect(limits.maxImmediateCommands == 64)
        #expect(limits.writeBufferHighWaterMark == 4 << 20)
        #expect(limits.writeBufferLowWaterMark == 1 << 20)
        #expect(limits.maxReadBytesInFlight == 16 << 20)
        #expect(limits.maxWriteBytesInFlight == 16 << 20)
    }

    @Test func everyKeyIsRead() throws {
        let limits = try parse(
            """
            [limits]
            login_timeout = 2
            max_connections = 100
            max_connections_per_initiator_address = 8
            max_immediate_commands = 16
            write_buffer_high_water_mark = 65536
            write_buffer_low_water_mark = 32768
            max_read_bytes_in_flight = 1048576
            max_write_bytes_in_flight = 2097152
            """
        ).limits
        #expect(limits.loginTimeout == .seconds(2))
        #expect(limits.maxConnections == 100)
        #expect(limits.maxConnectionsPerInitiatorAddress == 8)
        #expect(limits.maxImmediateCommands == 16)
        #expect(limits.writeBufferHighWaterMark == 65536)
        #expect(limits.writeBufferLowWaterMark == 32768)
        #expect(limits.maxReadBytesInFlight == 1 << 20)
        #expect(limits.maxWriteBytesInFlight == 2 << 20)
    }

    @Test(arguments: [
        (#line, "[limits]\nlogin_timeout = 0", "limits.login_timeout"),
        (#line, "[limits]\nmax_connections = 0", "limits.max_connections"),
        (#line, "[limits]\nmax_immediate_commands = -1", "limits.max_immediate_commands"),
        (
            #line, "[limits]\nwrite_buffer_high_water_mark = 8192\nwrite_buffer_low_water_mark = 16384",
            "limits.write_buffer_low_water_mark"
        ),
        (#line, "[limits]\nlogin_timout = 3", "limits.login_timout"),
    ])
    func badValuesNameTheKey(line: Int, toml: String, key: String) {
        #expect(diagnostics(toml).first?.key == key, "case at line \(line)")
    }
}
