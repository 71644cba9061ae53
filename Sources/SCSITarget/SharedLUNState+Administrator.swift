import SCSIWire

extension NexusName {
    /// No I_T nexus: the sender of a change an administrator made through
    /// the admin API rather than a SCSI command. It matches no real nexus,
    /// so every registrant is told.
    public static let administrator = NexusName(initiatorPort: "", targetPort: "")
}

extension SharedLUNState {
    /// An administrator's clear of the persistent reservations (`tessera pr
    /// clear`): what PERSISTENT RESERVE OUT CLEAR does (SPC-4 §5.13.11.2.4:
    /// every registration and the reservation removed, the generation
    /// bumped), without a registered nexus to ask for it. Every registrant is
    /// told RESERVATIONS PREEMPTED (2A/03), as CLEAR tells the others. SPC-2
    /// reservations and mode pages are left alone. Returns the state after
    /// it and the change's effects, or nil when there was nothing to clear.
    public func administrativelyCleared() -> (state: SharedLUNState, effects: [ContextEffect])? {
        guard !persistent.registrations.isEmpty || persistent.reservation != nil else { return nil }
        var after = self
        let effects = persistent.registrations.map {
            ContextEffect.registrantUnitAttention(.reservationsPreempted, port: $0.port, except: .administrator)
        }
        after.persistent.registrations.removeAll()
        after.persistent.reservation = nil
        after.persistent.generation &+= 1
        return (after, effects)
    }
}
