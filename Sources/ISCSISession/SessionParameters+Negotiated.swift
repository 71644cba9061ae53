extension SessionParameters {
    /// The machine's parameters from a login's outcome plus the target's own limits.
    public init(
        negotiated: NegotiatedParameters, queueDepth: Int = 128, nopInInterval: Duration? = .seconds(5),
        nopInTimeout: Duration = .seconds(30),
        maxImmediateCommands: Int = 64, maxSolicitedWriteBytes: Int = 16 << 20
    ) {
        self.init(
            initialR2T: negotiated.initialR2T, immediateData: negotiated.immediateData,
            firstBurstLength: Int(negotiated.firstBurstLength), maxBurstLength: Int(negotiated.maxBurstLength),
            maxOutstandingR2T: Int(negotiated.maxOutstandingR2T),
            initiatorMaxRecvDataSegmentLength: Int(negotiated.initiatorMaxRecvDataSegmentLength),
            targetMaxRecvDataSegmentLength: Int(negotiated.targetMaxRecvDataSegmentLength),
            dataPDUInOrder: negotiated.dataPDUInOrder, dataSequenceInOrder: negotiated.dataSequenceInOrder,
            errorRecoveryLevel: Int(negotiated.errorRecoveryLevel), defaultTime2Wait: Int(negotiated.defaultTime2Wait),
            defaultTime2Retain: Int(negotiated.defaultTime2Retain), queueDepth: queueDepth,
            nopInInterval: nopInInterval, nopInTimeout: nopInTimeout, maxImmediateCommands: maxImmediateCommands,
            maxSolicitedWriteBytes: maxSolicitedWriteBytes)
    }
}
