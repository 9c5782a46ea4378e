using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Tests.Run.Fakes;

/// <summary>
/// A pool in memory, written by hand (as Serilog's CollectingSink): hosts, VMs, HA, other_config, with the rules of XAPI
/// the run relies on (a host reboots only disabled and empty, a VM migrates only to a live enabled host with room, a
/// rebooted host comes back live and enabled with a new boot time). A reboot completes at once, so the run never waits.
/// <see cref="Freeze"/> is the moment the run's process dies: every later call fails, nothing more changes.
/// </summary>
internal sealed partial class FakePool(TimeProvider clock) : IPoolConnection
{
    public const long GiB = 1L << 30;
    private readonly Lock _lock = new();

    public sealed class Host
    {
        public required string Uuid { get; init; }
        public required string Name { get; init; }
        public bool Enabled { get; set; } = true;
        public bool Live { get; set; } = true;
        public long Memory { get; init; } = 64 * GiB;
        public DateTimeOffset BootTime { get; set; }
        public DateTimeOffset AgentStart { get; set; }
        public int BootCount { get; set; }

        /// <summary>Goes down at its reboot and never comes back.</summary>
        public bool NeverReturns { get; set; }

        /// <summary>host.pending_guidances (mandatory): while any is pending, a disabled host is not enabled (xapi 24.10.0+).</summary>
        public List<string> Guidances { get; } = [];

        /// <summary>A guidance the host comes back from its next reboot with (as the lab's pendingGuidance fault).</summary>
        public string? GuidanceOnReturn { get; set; }

        public Dictionary<string, string> SoftwareVersion { get; } = [];

        /// <summary>The shared SR the host's PBD fails to plug for at its next boot (xapi then enables it anyway, HA off).</summary>
        public string? UnpluggedOnReturn { get; set; }

        /// <summary>Shared SRs (uuid) whose PBD on this host is not plugged now.</summary>
        public List<string> Unplugged { get; } = [];

        /// <summary>While set, PBD.plug on this host fails with this code (the storage is really unreachable).</summary>
        public string? PlugRefusal { get; set; }
    }

    public sealed class Vm
    {
        public required string Uuid { get; init; }
        public required string Name { get; init; }
        public required string Host { get; set; }
        public long Memory { get; init; } = 4 * GiB;
        public bool Running { get; set; } = true;

        /// <summary>What XAPI says of its live migration (VM_HAS_PCI_ATTACHED, ...): it cannot move; null: it can.</summary>
        public string? Pinned { get; init; }

        /// <summary>VM.clean_shutdown fails with this code (VM_LACKS_FEATURE, ...); "hang": the guest never finishes.</summary>
        public string? CleanShutdownFault { get; set; }

        /// <summary>VM.start_on fails with this code.</summary>
        public string? StartFault { get; set; }

        /// <summary>
        /// A VM.pool_migrate XAPI is still running (asked by a run that died): pool_migrate in current_operations, the
        /// memory reserved on this host (scheduled_to_be_resident_on) while the VM is still on its source, until
        /// <see cref="MigratingUntil"/> on the fake clock, when it lands here.
        /// </summary>
        public string? MigratingTo { get; set; }

        public DateTimeOffset MigratingUntil { get; set; }
    }

    /// <summary>Every VM power operation asked, in order: "clean vm", "hard vm", "start vm@host".</summary>
    public List<string> PowerCalls { get; } = [];

    public string Uuid { get; } = "pool-uuid";
    public string Name { get; init; } = "P";
    public string MasterUuid { get; set; } = "";
    public List<Host> Hosts { get; } = [];
    public List<Vm> Vms { get; } = [];
    public HaSettings Ha { get; set; } = HaSettings.Disabled;
    public Dictionary<string, string> OtherConfig { get; } = new(StringComparer.Ordinal);
    public bool Frozen { get; private set; }
    public int Migrations { get; private set; }

    /// <summary>Every key added to pool.other_config, in order; a removal as "-key".</summary>
    public List<string> Added { get; } = [];

    /// <summary>host.enable calls XAPI refused for pending mandatory guidance (uuid each time).</summary>
    public List<string> RefusedEnables { get; } = [];

    /// <summary>Things that would hurt a real pool (a host rebooted with VMs on it, a VM halted); must stay empty.</summary>
    public List<string> Violations { get; } = [];

    /// <summary>n hosts (h1 the master), v VMs a host, HA on with settings to restore, one empty host's worth of room.</summary>
    public static FakePool Create(TimeProvider clock, int hosts = 4, int vmsPerHost = 3, bool ha = true)
    {
        var pool = new FakePool(clock);
        var boot = clock.GetUtcNow().AddDays(-30);
        for (var i = 1; i <= hosts; i++)
        {
            pool.Hosts.Add(new Host { Uuid = $"h{i}", Name = $"xen{i}", BootTime = boot, AgentStart = boot });
            for (var v = 1; v <= vmsPerHost; v++)
            {
                pool.Vms.Add(new Vm { Uuid = $"vm{i}-{v}", Name = $"vm-{i}-{v}", Host = $"h{i}" });
            }
        }

        pool.MasterUuid = "h1";
        if (ha)
        {
            pool.Ha = new HaSettings(true, ["sr-heartbeat"], new Dictionary<string, string> { ["timeout"] = "180" }, 1, true);
        }

        return pool;
    }

    public void Freeze()
    {
        lock (_lock)
        {
            Frozen = true;
        }
    }

    public void Thaw()
    {
        lock (_lock)
        {
            Frozen = false;
        }
    }

    /// <summary>What a test compares before and after: everything the run must put back (VM placement may differ).</summary>
    public string Audit()
    {
        lock (_lock)
        {
            return string.Join("\n",
                $"ha {Ha.Enabled} {string.Join(",", Ha.HeartbeatSrUuids)} {string.Join(",", Ha.Configuration.Select(kv => kv.Key + "=" + kv.Value))} {Ha.HostFailuresToTolerate} {Ha.AllowOvercommit}",
                "other_config " + string.Join(",", OtherConfig.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key == "auto_poweron" ? kv.Key + "=" + kv.Value : kv.Key)),
                "hosts " + string.Join(",", Hosts.Select(h => $"{h.Name}:{(h.Enabled ? "enabled" : "disabled")}:{(h.Live ? "live" : "down")}{(h.Guidances.Count > 0 ? ":" + string.Join("+", h.Guidances) : "")}")),
                "vms running " + Vms.Count(v => v.Running) + "/" + Vms.Count);
        }
    }

    public Host H(string uuid) => Hosts.First(h => h.Uuid == uuid);

    private void Check()
    {
        if (Frozen)
        {
            throw new SimulatedCrash();
        }
    }

    private static PoolOperationException Refused(string code, params string[] p) => new(code, p, "XenAPI error " + code) { Kind = PoolErrorKind.Refused };

    private void LandMigrations()
    {
        var now = clock.GetUtcNow();
        foreach (var v in Vms.Where(v => v.MigratingTo is not null && now >= v.MigratingUntil))
        {
            v.Host = v.MigratingTo!;
            v.MigratingTo = null;
            Migrations++;
        }
    }

    private HostState ToState(Host h)
    {
        var used = Vms.Where(v => v.Running && (v.Host == h.Uuid || v.MigratingTo == h.Uuid)).Sum(v => v.Memory);
        return new HostState(h.Uuid, h.Name, "192.0.2." + h.Uuid[1..], h.Enabled, h.Live, h.Memory, h.Memory - GiB - used, GiB,
            h.BootTime, h.AgentStart, [.. h.Guidances], [], [])
        {
            Software = PoolSoftware.From(h.SoftwareVersion),
            UnpluggedSharedSrs = [.. h.Unplugged.Select(sr => new SrLink(sr, sr.Replace("sr-", "", StringComparison.Ordinal)))],
        };
    }

    public Task<PoolSnapshot> ReadAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            Check();
            LandMigrations();
            return Task.FromResult(new PoolSnapshot(Uuid, Name, MasterUuid, Ha, new Dictionary<string, string>(OtherConfig), [],
                Hosts.Select(ToState).ToList(),
                Vms.Select(v => new VmState(v.Uuid, v.Name, v.Running ? "Running" : "Halted", v.Running ? v.Host : null, v.Memory, v.Running ? v.Pinned : null, ["sr-shared"], [], "",
                    v.MigratingTo is null ? [] : ["pool_migrate"])).ToList(),
                [new SrInfo("sr-shared", "shared", true, null), new SrInfo("sr-heartbeat", "heartbeat", true, null)]));
        }
    }

    public Task<HostState> ReadHostAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            Check();
            return Task.FromResult(ToState(H(hostUuid)));
        }
    }

    public Task<IReadOnlyDictionary<string, IReadOnlyList<string>>> GetVmsPreventingEvacuationAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            Check();
            // With HA on, XAPI reports the VMs it does not protect as such and nothing else about them (xapi_host.ml).
            var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            if (Ha.Enabled)
            {
                foreach (var vm in Vms.Where(v => v.Running && v.Host == hostUuid && Unprotected.Contains(v.Uuid)))
                {
                    result[vm.Uuid] = ["HOST_EVACUATE_VM_NOT_HA_PROTECTED", vm.Uuid];
                }
            }

            return Task.FromResult<IReadOnlyDictionary<string, IReadOnlyList<string>>>(result);
        }
    }

    /// <summary>VMs HA does not protect (ha_restart_priority empty).</summary>
    public HashSet<string> Unprotected { get; } = new(StringComparer.Ordinal);

    /// <summary>VM uuid to the error VM.assert_can_boot_here gives for any target (none: it can boot anywhere).</summary>
    public Dictionary<string, string[]> CannotBootHere { get; } = new(StringComparer.Ordinal);

    /// <summary>Every VM.assert_can_boot_here asked, as "vm@host".</summary>
    public List<string> BootHereAsked { get; } = [];

    public Task<IReadOnlyList<string>?> CanBootHereAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            Check();
            BootHereAsked.Add(vmUuid + "@" + hostUuid);
            return Task.FromResult<IReadOnlyList<string>?>(CannotBootHere.TryGetValue(vmUuid, out var e) ? e : null);
        }
    }

    public Task<DateTimeOffset> GetServerTimeAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            Check();
            return Task.FromResult(clock.GetUtcNow());
        }
    }

    private Task Mutate(Action change)
    {
        lock (_lock)
        {
            Check();
            change();
            return Task.CompletedTask;
        }
    }

    /// <summary>"lost-reply": pool.disable_ha happens but its caller gets an error; "refused": it fails and HA stays on.</summary>
    public string? DisableHaFault { get; set; }

    public Task DisableHaAsync(CancellationToken cancellationToken = default) => Mutate(() =>
    {
        switch (DisableHaFault)
        {
            case "refused":
                throw Refused("HA_HOST_CANNOT_ACCESS_STATEFILE");
            case "lost-reply":
                Ha = HaSettings.Disabled;
                throw new PoolOperationException("ROLLREBOOT_TRANSPORT_ERROR", ["reset"], "connection reset") { Kind = PoolErrorKind.Unreachable };
            default:
                Ha = HaSettings.Disabled;
                break;
        }
    });

    /// <summary>While set, pool.enable_ha's task never finishes (a host's HA daemon that does not start); only a
    /// cancellation ends the wait, and HA stays off.</summary>
    public bool EnableHaHangs { get; set; }

    public async Task EnableHaAsync(IReadOnlyList<string> heartbeatSrUuids, IReadOnlyDictionary<string, string> configuration, CancellationToken cancellationToken = default)
    {
        if (EnableHaHangs)
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, clock, cancellationToken);
        }

        await EnableHaNowAsync(heartbeatSrUuids, configuration);
    }

    private Task EnableHaNowAsync(IReadOnlyList<string> heartbeatSrUuids, IReadOnlyDictionary<string, string> configuration) =>
        Mutate(() =>
        {
            if (Ha.Enabled)
            {
                throw Refused("HA_IS_ENABLED");
            }

            // pool.enable_ha leaves ntol at what XAPI computes; the run sets the recorded one afterwards.
            Ha = new HaSettings(true, heartbeatSrUuids.ToList(), new Dictionary<string, string>(configuration), 0, false);
        });

    public Task SetHaHostFailuresToTolerateAsync(long value, CancellationToken cancellationToken = default) => Mutate(() => Ha = Ha with { HostFailuresToTolerate = value });

    public Task SetHaAllowOvercommitAsync(bool value, CancellationToken cancellationToken = default) => Mutate(() => Ha = Ha with { AllowOvercommit = value });

    public Task<bool> TryAddPoolOtherConfigAsync(string key, string value, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            Check();
            var added = OtherConfig.TryAdd(key, value);
            if (added)
            {
                Added.Add(key);
                if (key == "rollreboot-lock-heartbeat" && !OtherConfig.ContainsKey("rollreboot-lock"))
                {
                    // A heartbeat written after its lock was released (issue 17's sweep found one, from a restore whose
                    // journal could no longer be written).
                    Violations.Add("lock heartbeat written without its lock: " + Environment.StackTrace);
                }
            }

            return Task.FromResult(added);
        }
    }

    public Task RemovePoolOtherConfigAsync(string key, CancellationToken cancellationToken = default) => Mutate(() =>
    {
        OtherConfig.Remove(key);
        Added.Add("-" + key);
    });

    public Task DisableHostAsync(string hostUuid, CancellationToken cancellationToken = default) => Mutate(() => H(hostUuid).Enabled = false);

    /// <summary>Hosts disabled with auto_enable=false (they stay so across reboots until host.enable).</summary>
    public HashSet<string> StayDisabled { get; } = new(StringComparer.Ordinal);

    public Task DisableHostUntilEnabledAsync(string hostUuid, CancellationToken cancellationToken = default) => Mutate(() =>
    {
        H(hostUuid).Enabled = false;
        StayDisabled.Add(hostUuid);
    });

    public Task EnableHostAsync(string hostUuid, CancellationToken cancellationToken = default) => Mutate(() =>
    {
        var h = H(hostUuid);
        StayDisabled.Remove(hostUuid);
        if (!h.Live)
        {
            throw Refused("HOST_OFFLINE", hostUuid);
        }

        if (!h.Enabled && h.Guidances.Count > 0)
        {
            // xapi_host.ml enable -> repository_helpers.ml assert_no_host_pending_mandatory_guidance (24.10.0+).
            RefusedEnables.Add(hostUuid);
            throw Refused("HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY", hostUuid);
        }

        h.Enabled = true;
    });

    public Task RebootHostAsync(string hostUuid, CancellationToken cancellationToken = default) => Mutate(() =>
    {
        var h = H(hostUuid);
        if (h.Enabled)
        {
            throw Refused("HOST_NOT_DISABLED");
        }

        if (Vms.Any(v => v.Running && v.Host == hostUuid))
        {
            Violations.Add($"{h.Name} rebooted with VMs on it");
            throw Refused("HOST_IN_USE", hostUuid);
        }

        if (h.NeverReturns)
        {
            h.Live = false;
            return;
        }

        // Down and back at once, with a new boot: the boot clears the reboot guidances and restart_toolstack
        // (dbsync_slave.ml), and xapi enables the host unless a mandatory guidance is still pending.
        h.BootCount++;
        h.BootTime = clock.GetUtcNow();
        h.AgentStart = h.BootTime;
        h.Guidances.RemoveAll(g => HostState.IsRebootGuidance(g) || g == "restart_toolstack");
        if (h.GuidanceOnReturn is { } g)
        {
            h.Guidances.Add(g);
            h.GuidanceOnReturn = null;
        }

        if (h.UnpluggedOnReturn is { } sr)
        {
            h.Unplugged.Add(sr);
            h.UnpluggedOnReturn = null;
        }

        h.Enabled = h.Guidances.Count == 0;
    });

    public Task<IReadOnlyList<SrLink>> ReadUnpluggedSharedSrsAsync(string hostUuid, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            Check();
            return Task.FromResult<IReadOnlyList<SrLink>>([.. H(hostUuid).Unplugged.Select(sr => new SrLink(sr, sr.Replace("sr-", "", StringComparison.Ordinal)))]);
        }
    }

    /// <summary>Every PBD.plug asked, as "sr@host".</summary>
    public List<string> Plugged { get; } = [];

    public Task PlugSrAsync(string hostUuid, string srUuid, CancellationToken cancellationToken = default) => Mutate(() =>
    {
        var h = H(hostUuid);
        Plugged.Add(srUuid + "@" + hostUuid);
        if (h.PlugRefusal is { } code)
        {
            throw Refused(code, "", "NFS mount error", "");
        }

        h.Unplugged.Remove(srUuid);
    });

    public Task ShutdownHostAsync(string hostUuid, CancellationToken cancellationToken = default) => throw new NotSupportedException("the fake pool does not halt hosts");

    public Task PowerOnHostAsync(string hostUuid, CancellationToken cancellationToken = default) => throw new NotSupportedException("the fake pool does not halt hosts");

    /// <summary>What ReadNetworksAsync returns (the fake has no PIF model of its own).</summary>
    public List<NetworkInfo> Networks { get; } = [];

    /// <summary>The route of every VM.pool_migrate, in order.</summary>
    public List<(string Vm, MigrationRoute Route)> Routes { get; } = [];

    public Task<IReadOnlyList<NetworkInfo>> ReadNetworksAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<NetworkInfo>>([.. Networks]);

    public Task MigrateVmAsync(string vmUuid, string targetHostUuid, IProgress<double>? progress = null, CancellationToken cancellationToken = default) =>
        MigrateVmAsync(vmUuid, targetHostUuid, MigrationRoute.Default, progress, cancellationToken);

    /// <summary>A test's say on a migration (VM uuid, target uuid): an error code refuses it, null lets it run.</summary>
    public Func<string, string, string?>? MigrationRefusal { get; set; }

    /// <summary>How long a migration takes on the fake clock before the VM is on its target (zero: at once).</summary>
    public TimeSpan MigrationTime { get; set; }

    /// <summary>Each migration that went through: VM name, target uuid, when it was asked for and when it ended.</summary>
    public List<(string Vm, string Target, DateTimeOffset Start, DateTimeOffset End)> MigrationTimes { get; } = [];

    public async Task MigrateVmAsync(string vmUuid, string targetHostUuid, MigrationRoute route, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        var start = clock.GetUtcNow();
        if (MigrationTime > TimeSpan.Zero)
        {
            await Task.Delay(MigrationTime, clock, cancellationToken);
        }

        await MigrateNowAsync(vmUuid, targetHostUuid, route);
        lock (MigrationTimes)
        {
            MigrationTimes.Add((Vms.First(v => v.Uuid == vmUuid).Name, targetHostUuid, start, clock.GetUtcNow()));
        }
    }

    private Task MigrateNowAsync(string vmUuid, string targetHostUuid, MigrationRoute route) => Mutate(() =>
    {
        Routes.Add((Vms.First(v => v.Uuid == vmUuid).Name, route));
        var vm = Vms.First(v => v.Uuid == vmUuid);
        var target = H(targetHostUuid);
        if (vm.Pinned is { } pinned)
        {
            Violations.Add($"VM {vm.Name} ({pinned}) was asked to live-migrate");
            throw Refused(pinned, vmUuid);
        }

        if (vm.MigratingTo is not null)
        {
            // xapi_vm_lifecycle.ml: pool_migrate runs beside no other operation of the VM.
            throw Refused("OTHER_OPERATION_IN_PROGRESS", "VM", vmUuid, "pool_migrate");
        }

        if (MigrationRefusal?.Invoke(vmUuid, targetHostUuid) is { } refusal)
        {
            throw Refused(refusal, vmUuid);
        }

        if (!target.Live || !target.Enabled)
        {
            throw Refused("HOST_DISABLED", targetHostUuid);
        }

        if (target.Unplugged.Count > 0)
        {
            // Every fake VM has its disk on sr-shared (xapi_vm_helpers.ml assert_can_see_SRs).
            Violations.Add($"VM {vm.Name} sent to {target.Name}, which cannot see SR {target.Unplugged[0]}");
            throw Refused("VM_REQUIRES_SR", vmUuid, target.Unplugged[0]);
        }

        if (ToState(target).MemoryFree < vm.Memory)
        {
            throw Refused("HOST_NOT_ENOUGH_FREE_MEMORY", vm.Memory.ToString(System.Globalization.CultureInfo.InvariantCulture), ToState(target).MemoryFree.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        vm.Host = targetHostUuid;
        Migrations++;
    });

    public async Task CleanShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default)
    {
        Vm vm;
        lock (_lock)
        {
            Check();
            vm = Vms.First(v => v.Uuid == vmUuid);
            PowerCalls.Add("clean " + vm.Name);
            if (!vm.Running)
            {
                throw Refused("VM_BAD_POWER_STATE", vmUuid, "running", "halted");
            }
        }

        if (vm.CleanShutdownFault == "hang")
        {
            // The guest ignores the request: the caller's bound ends it (cancelling the task).
            await Task.Delay(Timeout.InfiniteTimeSpan, clock, cancellationToken);
        }

        await Mutate(() =>
        {
            if (vm.CleanShutdownFault is { } code)
            {
                throw Refused(code, vmUuid);
            }

            vm.Running = false;
        });
    }

    public Task HardShutdownVmAsync(string vmUuid, CancellationToken cancellationToken = default) => Mutate(() =>
    {
        var vm = Vms.First(v => v.Uuid == vmUuid);
        PowerCalls.Add("hard " + vm.Name);
        if (!vm.Running)
        {
            throw Refused("VM_BAD_POWER_STATE", vmUuid, "paused, suspended, running", "halted");
        }

        vm.Running = false;
    });

    public Task StartVmOnAsync(string vmUuid, string hostUuid, CancellationToken cancellationToken = default) => Mutate(() =>
    {
        var vm = Vms.First(v => v.Uuid == vmUuid);
        var h = H(hostUuid);
        PowerCalls.Add($"start {vm.Name}@{h.Name}");
        if (vm.Running)
        {
            throw Refused("VM_BAD_POWER_STATE", vmUuid, "halted", "running");
        }

        if (!h.Live)
        {
            throw Refused("HOST_NOT_LIVE");
        }

        if (!h.Enabled)
        {
            throw Refused("HOST_DISABLED", hostUuid);
        }

        if (vm.StartFault is { } code)
        {
            throw Refused(code, vmUuid);
        }

        vm.Host = hostUuid;
        vm.Running = true;
    });

    public Task WaitForChangeAsync(TimeSpan timeout, CancellationToken cancellationToken = default) => Task.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
