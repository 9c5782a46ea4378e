using System.Globalization;
using System.Text.Json.Nodes;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Lab.Sim;

/// <summary>Side effects the simulation asks for outside its lock (servers, sshd, CloudStack).</summary>
internal interface ISimEnvironment
{
    void XapiServing(SimHost host, bool serving);

    void HostPowered(SimHost host, bool up);

    /// <summary>A booting host's sshd answers, with the boot id of the boot under way (before xapi starts).</summary>
    void SshAnswering(SimHost host, string bootId);
}

/// <summary>
/// The simulated pool: one lock, one clock. Time advances exactly (discrete events: migration phases and
/// completions, reboots, faults) whenever a request arrives or the next event falls due.
/// </summary>
internal sealed partial class SimPool : ILabPoolView
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _clock;
    private readonly DateTimeOffset _origin;
    private readonly PriorityQueue<Action, (double, long)> _schedule = new();
    private long _scheduleSeq;
    private double _lastAdvance;
    private readonly List<SimMigration> _migrations = [];
    // Per object (event class, ref) the DB generations xapi keeps in each row's Stat (db_cache_types.ml): created and
    // last modified; deleted rows keep created and deleted. Objects never touched date from the first generation.
    private readonly Dictionary<(string Class, string Ref), (long Created, long Modified)> _stats = [];
    private readonly Dictionary<(string Class, string Ref), (long Created, long Deleted)> _deletedStats = [];
    private long _eventId = FirstGeneration;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly Random _faultRandom;
    private double? _firstChangeAt;
    private ISimEnvironment? _environment;
    private readonly int _firstAddressIndex;

    // The simulated instant being handled by this thread (a call, a migration phase, a reboot step): the timer wakes
    // a little after a happening is due, and what it changes and records must carry the instant itself.
    [ThreadStatic]
    private static double? s_happeningAt;

    internal readonly List<SimHost> Hosts = [];
    internal readonly List<SimVm> Vms = [];
    internal readonly List<SimSr> Srs = [];
    internal readonly Dictionary<string, SimVm> VmsByRef = [];
    internal readonly Dictionary<string, SimVm> VmsByMetricsRef = [];
    internal readonly Dictionary<string, SimVdi> Vdis = [];
    internal readonly Dictionary<string, SimVbd> Vbds = [];
    internal readonly Dictionary<string, SimPbd> Pbds = [];
    internal readonly Dictionary<string, SimTask> Tasks = [];
    internal readonly Dictionary<string, SimSession> Sessions = [];
    internal readonly Dictionary<string, string> PoolOtherConfig = [];
    internal readonly string PoolRef = NewRef();
    internal readonly string PoolUuid = Guid.NewGuid().ToString();
    internal readonly string NetworkRef = NewRef();
    internal readonly string NetworkUuid = Guid.NewGuid().ToString();

    /// <summary>The management network (first, <see cref="NetworkRef"/>) and the scenario's networks.</summary>
    internal readonly List<SimNetwork> Networks = [];
    internal readonly Dictionary<string, SimPif> Pifs = [];
    internal SimHost Master;
    internal bool HaEnabled;

    /// <summary>An HA transition under way ("ha_disable" / "ha_enable"): pool.current_operations shows it and a second
    /// HA call is refused with HA_DISABLE_IN_PROGRESS / HA_ENABLE_IN_PROGRESS (xapi_pool_helpers.ml).</summary>
    internal string? HaTransition;
    internal Dictionary<string, string> HaConfiguration = [];
    internal List<string> HaStatefiles = [];
    internal long HaHostFailuresToTolerate;
    internal bool HaAllowOvercommit;
    internal readonly List<string> HaHeartbeatSrNames = [];

    /// <param name="origin">Simulated second 0 (default: now); the pools of a fleet share one.</param>
    /// <param name="firstAddressIndex">Where the hosts' loopback addresses start (<see cref="LoopbackAddress"/>); a fleet's pools follow each other.</param>
    public SimPool(ScenarioFile scenario, TimeProvider clock, LabAudit audit, string password, DateTimeOffset? origin = null, int firstAddressIndex = 2)
    {
        Scenario = scenario;
        _clock = clock;
        _origin = origin ?? clock.GetUtcNow();
        _firstAddressIndex = firstAddressIndex;
        Audit = audit;
        Password = password;
        User = scenario.Pool.User ?? "root";
        Profile = XapiProfile.Parse(scenario.Pool.XapiVersion, scenario.Pool.ProductBrand);
        XapiVersion = Profile.Version;
        _faultRandom = new Random(scenario.Faults.Select(f => f.Seed ?? 0).FirstOrDefault(s => s != 0) is var seed and not 0 ? seed : 42);
        Master = null!;
        audit.UseClock(() => Now);
        Build();
        // Everything the scenario starts with dates from the first generation, as the objects of a database xapi loads.
        _stats.Clear();
        _deletedStats.Clear();
        _eventId = FirstGeneration;
    }

    public ScenarioFile Scenario { get; }

    /// <summary>The instant of simulated second 0.</summary>
    public DateTimeOffset Origin => _origin;

    public LabAudit Audit { get; }

    public string User { get; }

    public string Password { get; }

    public Version XapiVersion { get; }

    /// <summary>The xapi release and product the pool behaves as (pool.xapiVersion, pool.productBrand).</summary>
    public XapiProfile Profile { get; }

    /// <summary>Simulated seconds since the lab started.</summary>
    public double Now => s_happeningAt ?? ClockNow;

    private double ClockNow => (_clock.GetUtcNow() - _origin).TotalSeconds;

    public DateTimeOffset SimTime(double seconds) => _origin + TimeSpan.FromSeconds(seconds);

    public DateTimeOffset NowTime => SimTime(Now);

    internal Lock Gate => _gate;

    public void Attach(ISimEnvironment environment) => _environment = environment;

    IReadOnlyList<LabHostView> ILabPoolView.Hosts
    {
        get
        {
            lock (_gate)
            {
                return Hosts.Select(h => new LabHostView(h.Name, h.Uuid, h.Address, h.Live) { Enabled = h.Enabled, IsMaster = h == Master }).ToList();
            }
        }
    }

    IReadOnlyList<LabVmView> ILabPoolView.Vms
    {
        get
        {
            lock (_gate)
            {
                return Vms.Where(v => !v.IsControlDomain).Select(v => new LabVmView(v.Name, v.Uuid, v.ResidentOn?.Name, v.PowerState, v.AffinityGroup)).ToList();
            }
        }
    }

    /// <summary>
    /// The loopback address of the host numbered <paramref name="index"/> (from 2): 127.0.0.2 to 127.0.0.254, then
    /// 127.0.1.2 onwards (Linux answers on all of 127.0.0.0/8).
    /// </summary>
    internal static string LoopbackAddress(int index)
    {
        var n = index - 2;
        if (n < 0 || n / 253 > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, "no loopback address left for this host");
        }

        return string.Create(CultureInfo.InvariantCulture, $"127.0.{n / 253}.{(n % 253) + 2}");
    }

    internal static string NewRef() => "OpaqueRef:" + Guid.NewGuid();

    /// <summary>eth0 on the management network (the host's address, the hosts' migration link) and a PIF per scenario network.</summary>
    private void BuildNetworks()
    {
        var management = new SimNetwork { Ref = NetworkRef, Uuid = NetworkUuid, Name = "Pool-wide network associated with eth0", Bridge = "xenbr0" };
        Networks.Add(management);
        foreach (var h in Hosts)
        {
            AddPif(management, h, "eth0", h.Address, (long)(Scenario.Migration.HostLinkMBps * 8), management: true);
        }

        foreach (var (spec, i) in Scenario.Networks.Select((n, i) => (n, i + 1)))
        {
            var network = new SimNetwork { Ref = NewRef(), Uuid = Guid.NewGuid().ToString(), Name = spec.Name, Bridge = spec.Bridge ?? "xenbr" + i.ToString(CultureInfo.InvariantCulture), LinkMBps = spec.LinkMBps };
            Networks.Add(network);
            foreach (var (h, k) in Hosts.Select((h, k) => (h, k + 1)).Where(x => spec.Hosts is null || spec.Hosts.Contains(x.h.Name)))
            {
                var ip = spec.NoIp.Contains(h.Name) ? "" : string.Create(CultureInfo.InvariantCulture, $"10.{i}.{k / 250}.{(k % 250) + 1}");
                var pif = AddPif(network, h, "eth" + i.ToString(CultureInfo.InvariantCulture), ip, spec.SpeedMbps ?? (long)(spec.LinkMBps * 8), management: false);
                pif.Attached = !spec.Unplugged.Contains(h.Name);
            }
        }
    }

    private SimPif AddPif(SimNetwork network, SimHost host, string device, string ip, long speedMbps, bool management)
    {
        var pif = new SimPif
        {
            Ref = NewRef(),
            Uuid = Guid.NewGuid().ToString(),
            MetricsRef = NewRef(),
            MetricsUuid = Guid.NewGuid().ToString(),
            Host = host,
            Network = network,
            Device = device,
            Management = management,
            Ip = ip,
            SpeedMbps = speedMbps,
        };
        network.Pifs.Add(pif);
        Pifs[pif.Ref] = pif;
        return pif;
    }

    private void Build()
    {
        var s = Scenario;
        var now = NowTime;
        var index = _firstAddressIndex;
        foreach (var hs in s.Hosts)
        {
            var h = new SimHost
            {
                Ref = NewRef(),
                Uuid = Guid.NewGuid().ToString(),
                Name = hs.Name,
                Address = LoopbackAddress(index),
                MetricsRef = NewRef(),
                MetricsUuid = Guid.NewGuid().ToString(),
                MemoryTotal = hs.MemoryMiB * LabMemory.MiB,
                Dom0Memory = hs.Dom0MemoryMiB * LabMemory.MiB,
                RebootSeconds = hs.RebootSeconds,
                PowerOnMode = hs.PowerOnMode,
                PowerOnFails = hs.PowerOnFails,
                // Resolved by the loader: a host host.apply_updates left with mandatory guidance is disabled (xapi_host.ml apply_updates).
                Enabled = hs.Enabled ?? !(Profile.GuidanceKeepsHostDisabled && ScenarioLoader.MandatoryGuidances(hs, Profile).Count > 0),
                BootTime = now - TimeSpan.FromDays(30 + index),
                AgentStartTime = now - TimeSpan.FromDays(30 + index) + TimeSpan.FromSeconds(40),
                MetricsUpdated = now,
            };
            index++;
            SetPendingReboot(h, hs);

            Hosts.Add(h);
            if (hs.Master)
            {
                Master = h;
            }

            var dom0 = new SimVm
            {
                Ref = NewRef(),
                Uuid = Guid.NewGuid().ToString(),
                Name = "Control domain on host: " + hs.Name,
                PowerState = "Running",
                ResidentOn = h,
                MemoryMiB = hs.Dom0MemoryMiB,
                IsControlDomain = true,
                PvDrivers = true,
                MetricsRef = NewRef(),
            };
            h.ControlDomainRef = dom0.Ref;
            AddVmObject(dom0);
        }

        BuildNetworks();
        foreach (var f in s.Faults)
        {
            var host = Hosts.FirstOrDefault(h => h.Name == f.Host);
            switch (f.Type)
            {
                case "hostDoesNotReturn":
                    host!.NeverReturns = true;
                    break;
                case "slowReboot":
                    host!.RebootSeconds = f.RebootSeconds ?? host.RebootSeconds;
                    break;
                case "pendingGuidance":
                    host!.GuidanceOnReturn = f.Guidance ?? "reboot_host";
                    break;
                case "pbdPlugFails":
                    PlugFaults[(f.Host!, f.Sr!)] = new PlugFault { BootsLeft = f.Times, Error = f.Error is { Count: > 0 } e ? [.. e] : null };
                    break;
            }
        }

        foreach (var rs in s.Srs)
        {
            AddSr(rs.Name, rs.Shared, rs.Host is null ? null : Hosts.First(h => h.Name == rs.Host), rs.Name.Contains("iso", StringComparison.OrdinalIgnoreCase) ? "iso" : "user", rs.Clustered, rs.RecoverySeconds);
        }

        foreach (var vs in s.Vms)
        {
            AddVm(vs);
        }

        foreach (var (k, v) in s.Pool.OtherConfig ?? [])
        {
            PoolOtherConfig[k] = v;
        }

        foreach (var f in s.Faults.Where(f => f.Type == "vmBusy" && f.AtSeconds is null))
        {
            // Busy from the start: a backup already running when the operator begins.
            MakeBusy(Vms.First(v => v.Name == f.Vm), f.Operation ?? "export", f.DurationSeconds!.Value);
        }

        var ha = s.Pool.Ha;
        if (ha is { Enabled: true })
        {
            var sr = Srs.First(r => r.Name == (ha.HeartbeatSr ?? Srs.First(x => x.Shared).Name));
            HaEnabled = true;
            HaStatefiles = [CreateStatefile(sr)];
            HaHeartbeatSrNames.Add(sr.Name);
            if (ha.TimeoutSeconds is { } timeout)
            {
                HaConfiguration["timeout"] = timeout.ToString(CultureInfo.InvariantCulture);
            }

            HaHostFailuresToTolerate = ha.HostFailuresToTolerate;
            HaAllowOvercommit = ha.AllowOvercommit;
        }
    }

    /// <summary>
    /// A patched host waiting for its reboot, as its product shows it. XCP-ng (updates through yum, no guidances):
    /// other_config.rpm_patch_installation_time after boot_time, which Xen Orchestra writes after its update and reads
    /// back (xo-server src/xapi/mixins/patching.mjs _xcpUpdate, src/xapi-object-to-xo.mjs rebootRequired). XenServer: the
    /// mandatory guidance reboot_host that host.apply_updates sets (xapi/repository.ml apply_updates') from 1.303.0, and
    /// before pending_guidances existed the legacy pool_update list updates_requiring_reboot (xapi/create_misc.ml).
    /// </summary>
    private void SetPendingReboot(SimHost h, HostSpec hs)
    {
        if (hs.PendingReboot)
        {
            if (Profile.IsXcpNg)
            {
                h.RpmPatchInstallationTime = NowTime - TimeSpan.FromHours(2);
            }
            else if (!Profile.HasPendingGuidances)
            {
                h.UpdatesRequiringReboot.Add(NewRef());
            }
        }

        h.PendingGuidances.AddRange(ScenarioLoader.MandatoryGuidances(hs, Profile));
        h.PendingUpdates.AddRange(hs.Updates);
        if (hs.Guidances is { } g)
        {
            h.PendingGuidancesRecommended.AddRange(g.Recommended);
            h.PendingGuidancesFull.AddRange(g.Full);
        }
    }

    private void AddVmObject(SimVm vm)
    {
        Vms.Add(vm);
        VmsByRef[vm.Ref] = vm;
        VmsByMetricsRef[vm.MetricsRef] = vm;
        if (vm.GuestMetricsRef is not null)
        {
            VmsByMetricsRef[vm.GuestMetricsRef] = vm;
        }
    }

    private SimSr AddSr(string name, bool shared, SimHost? host, string contentType, bool clustered = false, double recoverySeconds = 0)
    {
        var sr = new SimSr { Ref = NewRef(), Uuid = Guid.NewGuid().ToString(), Name = name, Shared = shared, Host = host, ContentType = contentType, Clustered = clustered, RecoverySeconds = recoverySeconds };
        Srs.Add(sr);
        foreach (var h in shared ? Hosts : host is null ? [] : [host])
        {
            var pbd = new SimPbd(NewRef(), Guid.NewGuid().ToString(), h, sr);
            Pbds[pbd.Ref] = pbd;
            sr.PbdRefs.Add(pbd.Ref);
        }

        return sr;
    }

    private string CreateStatefile(SimSr sr)
    {
        var vdi = new SimVdi(NewRef(), Guid.NewGuid().ToString(), "Statefile for HA", sr, "ha_statefile");
        Vdis[vdi.Ref] = vdi;
        sr.VdiRefs.Add(vdi.Ref);
        Touch("vdi", vdi.Ref, "add");
        return vdi.Ref;
    }

    internal SimVm AddVm(VmSpec vs)
    {
        var host = vs.Host is null ? null : Hosts.First(h => h.Name == vs.Host);
        var vm = new SimVm
        {
            Ref = NewRef(),
            Uuid = Guid.NewGuid().ToString(),
            Name = vs.Name,
            PowerState = vs.PowerState,
            ResidentOn = vs.PowerState is "Running" or "Paused" ? host : null,
            MemoryMiB = vs.MemoryMiB,
            PvDrivers = vs.PvDrivers,
            Pci = vs.Pci,
            Vgpu = vs.Vgpu,
            Vusb = vs.Vusb,
            VgpuSuspendable = vs.VgpuSuspendable,
            DomainType = vs.DomainType,
            FeatureSuspend = vs.FeatureSuspend,
            FeatureShutdown = vs.FeatureShutdown,
            ShutdownSeconds = vs.ShutdownSeconds,
            IgnoresShutdown = vs.IgnoresShutdown,
            CantSuspendReason = vs.CantSuspendReason,
            Nomigrate = vs.Nomigrate,
            NestedVirt = vs.NestedVirt,
            HaRestartPriority = vs.HaProtected ? "restart" : "",
            HaAlwaysRun = vs.HaProtected,
            AffinityGroup = vs.AffinityGroup,
            MetricsRef = NewRef(),
            // A guest agent reports guest metrics: full PV drivers, or an agent that advertises features only.
            GuestMetricsRef = (vs.PvDrivers || vs.FeatureSuspend || vs.FeatureShutdown || vs.CantSuspendReason is not null) && vs.PowerState is "Running" or "Paused" ? NewRef() : null,
        };
        if (host is not null && vs.PowerState is "Halted")
        {
            vm.OtherConfig["last_host"] = host.Uuid;
        }

        foreach (var (k, v) in vs.OtherConfig ?? [])
        {
            vm.OtherConfig[k] = v;
        }

        var device = 0;
        foreach (var srName in vs.Srs ?? [])
        {
            var sr = Srs.First(r => r.Name == srName);
            var vdi = new SimVdi(NewRef(), Guid.NewGuid().ToString(), $"{vs.Name} disk {device}", sr, "user");
            Vdis[vdi.Ref] = vdi;
            sr.VdiRefs.Add(vdi.Ref);
            var vbd = new SimVbd(NewRef(), Guid.NewGuid().ToString(), vm, vdi, "Disk", device.ToString(CultureInfo.InvariantCulture));
            Vbds[vbd.Ref] = vbd;
            vm.VbdRefs.Add(vbd.Ref);
            device++;
        }

        SimVdi? iso = null;
        if (vs.CdromIso is { Length: > 0 } cd)
        {
            var slash = cd.IndexOf('/', StringComparison.Ordinal);
            var srName = slash > 0 ? cd[..slash] : "local-iso";
            var isoName = slash > 0 ? cd[(slash + 1)..] : cd;
            var sr = Srs.FirstOrDefault(r => r.Name == srName) ?? AddSr(srName, false, Hosts.FirstOrDefault(h => srName.StartsWith(h.Name + "-", StringComparison.Ordinal)) ?? host, "iso");
            iso = new SimVdi(NewRef(), Guid.NewGuid().ToString(), isoName, sr, "user");
            Vdis[iso.Ref] = iso;
            sr.VdiRefs.Add(iso.Ref);
        }

        var cdVbd = new SimVbd(NewRef(), Guid.NewGuid().ToString(), vm, iso, "CD", "3");
        Vbds[cdVbd.Ref] = cdVbd;
        vm.VbdRefs.Add(cdVbd.Ref);
        AddVmObject(vm);
        Touch("vm", vm.Ref, "add");
        return vm;
    }

    // ---- memory --------------------------------------------------------------------------------

    internal long UsedBytes(SimHost h)
    {
        long used = 0;
        foreach (var vm in Vms)
        {
            if ((vm.ResidentOn == h && vm.IsRunning) || vm.StartingOn == h)
            {
                used += vm.NeededBytes;
            }
        }

        foreach (var m in _migrations)
        {
            if (m.To == h)
            {
                used += m.Vm.NeededBytes;
            }
        }

        return used;
    }

    /// <summary>The host a VM's memory is reserved on while it starts or migrates there (scheduled_to_be_resident_on).</summary>
    internal SimHost? ScheduledOn(SimVm vm) => vm.StartingOn ?? _migrations.FirstOrDefault(m => m.Vm == vm)?.To;

    /// <summary>Free memory: total less dom0 (a resident VM of its own) less every guest resident or arriving.</summary>
    internal long FreeBytes(SimHost h) => h.Power == HostPower.Down ? 0 : Math.Max(0, h.MemoryTotal - UsedBytes(h));

    // ---- time ----------------------------------------------------------------------------------

    internal void Schedule(double at, Action action)
    {
        _schedule.Enqueue(action, (at, _scheduleSeq++));
        _wake.Release();
    }

    /// <summary>Brings the simulation up to the present. Call under the gate.</summary>
    internal void Advance()
    {
        var now = ClockNow;
        while (true)
        {
            var next = double.PositiveInfinity;
            if (_schedule.TryPeek(out _, out var key))
            {
                next = key.Item1;
            }

            var migrationNext = NextMigrationEvent();
            var t = Math.Min(next, migrationNext);
            if (t > now)
            {
                Integrate(now);
                break;
            }

            Integrate(Math.Max(t, _lastAdvance));
            using var instant = AtInstant(_lastAdvance);
            if (next <= migrationNext)
            {
                var action = _schedule.Dequeue();
                action();
            }
            else
            {
                StepMigrations(t);
            }

            RecomputeRates();
        }

        PublishProgress();
    }

    private static InstantScope AtInstant(double at)
    {
        var scope = new InstantScope(s_happeningAt);
        s_happeningAt = at;
        return scope;
    }

    private readonly struct InstantScope(double? previous) : IDisposable
    {
        public void Dispose() => s_happeningAt = previous;
    }

    /// <summary>Simulated seconds until the next internal event (for the timer loop).</summary>
    internal double NextEventIn()
    {
        var next = _schedule.TryPeek(out _, out var key) ? key.Item1 : double.PositiveInfinity;
        next = Math.Min(next, NextMigrationEvent());
        return next - Now;
    }

    internal async Task RunTimerAsync(CancellationToken cancellationToken)
    {
        var scale = _clock is Core.Time.ScaledTimeProvider s ? s.Scale : 1.0;
        while (!cancellationToken.IsCancellationRequested)
        {
            double waitSim;
            lock (_gate)
            {
                Advance();
                waitSim = NextEventIn();
            }

            // Wake at the next event, and at least every simulated second so task progress moves.
            var wall = TimeSpan.FromSeconds(Math.Clamp(Math.Min(waitSim, 1.0) / scale, 0.0005, 1.0));
            try
            {
                await _wake.WaitAsync(wall, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    // ---- migrations ----------------------------------------------------------------------------

    private double NextMigrationEvent()
    {
        var next = double.PositiveInfinity;
        foreach (var m in _migrations)
        {
            next = Math.Min(next, !m.Transferring ? m.SetupEndsAt : m.Rate > 0 ? _lastAdvance + (m.RemainingBytes / m.Rate) : double.PositiveInfinity);
        }

        return next;
    }

    private void Integrate(double to)
    {
        var dt = to - _lastAdvance;
        if (dt > 0)
        {
            foreach (var m in _migrations)
            {
                if (m.Transferring)
                {
                    m.RemainingBytes = Math.Max(0, m.RemainingBytes - (m.Rate * dt));
                }
            }

            _lastAdvance = to;
        }
    }

    private void StepMigrations(double t)
    {
        foreach (var m in _migrations.ToList())
        {
            if (!m.Transferring && m.SetupEndsAt <= t + 1e-9)
            {
                if (m.FailWith is { } error)
                {
                    FinishMigration(m, error);
                    continue;
                }

                m.Transferring = true;
            }
            else if (m.Transferring && m.RemainingBytes <= 1e-3 * Math.Max(1, m.Rate))
            {
                FinishMigration(m, null);
            }
        }
    }

    /// <summary>
    /// Each host has a link per network: the management one (migration.hostLinkMBps) and each scenario network's own
    /// (linkMBps); transfers on one link share it, as they leave the source and as they reach the target. A stream moves
    /// at most streamMBps; a compressed one at most compressMBps before compression, compressionRatio of that on the wire.
    /// </summary>
    private void RecomputeRates()
    {
        var m0 = Scenario.Migration;
        var outgoing = new Dictionary<(SimHost, SimNetwork?), int>();
        var incoming = new Dictionary<(SimHost, SimNetwork?), int>();
        foreach (var m in _migrations.Where(m => m.Transferring))
        {
            outgoing[(m.From, m.Network)] = outgoing.GetValueOrDefault((m.From, m.Network)) + 1;
            incoming[(m.To, m.Network)] = incoming.GetValueOrDefault((m.To, m.Network)) + 1;
        }

        foreach (var m in _migrations.Where(m => m.Transferring))
        {
            var link = (m.Network?.LinkMBps ?? m0.HostLinkMBps) * 1e6;
            var stream = (m.Compressed ? Math.Min(m0.StreamMBps, m0.CompressMBps * m0.CompressionRatio) : m0.StreamMBps) * 1e6;
            m.Rate = Math.Min(stream, Math.Min(link / outgoing[(m.From, m.Network)], link / incoming[(m.To, m.Network)]));
        }
    }

    private readonly Dictionary<SimTask, double> _publishedProgress = [];

    private void PublishProgress()
    {
        foreach (var m in _migrations)
        {
            if (m.Task is { } task)
            {
                // Setup counts as the first 5%.
                var p = m.Transferring ? 0.05 + (0.95 * m.Progress) : 0.05 * Math.Clamp((Now - m.StartedAt) / Math.Max(1e-9, m.SetupEndsAt - m.StartedAt), 0, 1);
                if (!_publishedProgress.TryGetValue(task, out var last) || p - last >= 0.01)
                {
                    task.Progress = Math.Round(p, 3);
                    _publishedProgress[task] = p;
                    Touch("task", task.Ref, "mod");
                }
            }
        }
    }

    internal SimMigration StartMigration(SimVm vm, SimHost to, SimTask? task, IReadOnlyDictionary<string, string>? options = null, SimNetwork? network = null, bool compressed = false)
    {
        var from = vm.ResidentOn!;
        var now = Now;
        IReadOnlyList<string>? fail = null;
        foreach (var f in Scenario.Faults.Where(f => f.Type == "migrationFails" && f.Vm == vm.Name && f.Times > 0))
        {
            f.Times--;
            fail = f.Error is { Count: > 0 } e ? e : ["VM_MIGRATE_FAILED", vm.Ref, from.Ref, to.Ref, "simulated failure"];
            break;
        }

        // A compressed stream puts compressionRatio of its bytes on the wire.
        var bytes = vm.MemoryBytes * (1 + Scenario.Migration.DirtyRatio) * (compressed ? Scenario.Migration.CompressionRatio : 1);
        var m = new SimMigration
        {
            Network = network?.LinkMBps is null ? null : network,
            Compressed = compressed,
            Vm = vm,
            From = from,
            To = to,
            StartedAt = now,
            SetupEndsAt = now + Scenario.Migration.SetupSeconds,
            TotalBytes = bytes,
            RemainingBytes = bytes,
            FailWith = fail,
            Task = task,
        };
        if (task is not null)
        {
            task.Migration = m;
        }

        _migrations.Add(m);
        vm.CurrentOperations[task?.Ref ?? NewRef()] = "pool_migrate";
        Touch("vm", vm.Ref, "mod");
        Touch("host_metrics", to.MetricsRef, "mod");
        var started = new Dictionary<string, object?> { ["vm"] = vm.Name, ["from"] = from.Name, ["to"] = to.Name, ["bytes"] = (long)bytes };
        if (network is not null)
        {
            started["network"] = network.Name;
        }

        if (compressed)
        {
            started["compressed"] = true;
        }
        if (options is not null)
        {
            // VM.pool_migrate's options map as the lab read it off the wire (host.evacuate has none).
            started["options"] = options;
        }

        Audit.Event("migration.start", started);
        _wake.Release();
        return m;
    }

    private void FinishMigration(SimMigration m, IReadOnlyList<string>? error)
    {
        _migrations.Remove(m);
        m.Vm.CurrentOperations.Clear();
        if (m.Task is { } t)
        {
            _publishedProgress.Remove(t);
        }

        if (error is null && !m.Cancelled)
        {
            m.Vm.ResidentOn = m.To;
            m.Vm.Migrations++;
            // xapi_vm_migrate.ml pool_migrate_complete: the VM runs on a new device model.
            RemoveVmGuidances(m.Vm, "restart_device_model");
            Touch("vm", m.Vm.Ref, "mod");
            Touch("host", m.From.Ref, "mod");
            Touch("host", m.To.Ref, "mod");
            Touch("host_metrics", m.From.MetricsRef, "mod");
            Touch("host_metrics", m.To.MetricsRef, "mod");
            Audit.Event("migration.end", new Dictionary<string, object?> { ["vm"] = m.Vm.Name, ["from"] = m.From.Name, ["to"] = m.To.Name, ["ok"] = true });
            CompleteTask(m.Task, "success", "", []);
            m.Done.TrySetResult("");
        }
        else
        {
            var info = m.Cancelled ? new List<string> { "TASK_CANCELLED", m.Task?.Ref ?? "" } : error!.ToList();
            Touch("vm", m.Vm.Ref, "mod");
            Touch("host_metrics", m.To.MetricsRef, "mod");
            Audit.Event("migration.end", new Dictionary<string, object?> { ["vm"] = m.Vm.Name, ["from"] = m.From.Name, ["to"] = m.To.Name, ["ok"] = false, ["error"] = info[0] });
            CompleteTask(m.Task, m.Cancelled ? "cancelled" : "failure", "", info);
            m.Done.TrySetException(new XapiError(info[0], [.. info.Skip(1)]));
        }
    }

    internal void CancelMigration(SimMigration m)
    {
        m.Cancelled = true;
        FinishMigration(m, ["TASK_CANCELLED"]);
        // The links it shared are free for the others from this instant, not from the next scheduled event.
        RecomputeRates();
    }

    internal IEnumerable<SimMigration> ActiveMigrations => _migrations;

    internal void CompleteTask(SimTask? task, string status, string result, List<string> errorInfo)
    {
        if (task is null || task.Status != "pending")
        {
            return;
        }

        task.Status = status;
        task.Result = result;
        task.ErrorInfo = errorInfo;
        task.Progress = 1;
        task.Finished = NowTime;
        Touch("task", task.Ref, "mod");
    }

    // ---- events --------------------------------------------------------------------------------

    /// <summary>The generation of the objects the scenario starts with (event.from "" reports them as added).</summary>
    internal const long FirstGeneration = 1;

    internal void Touch(string cls, string r, string op)
    {
        var generation = ++_eventId;
        var key = (cls, r);
        switch (op)
        {
            case "add":
                _stats[key] = (generation, generation);
                _deletedStats.Remove(key);
                break;
            case "del":
                var created = _stats.Remove(key, out var stat) ? stat.Created : FirstGeneration;
                _deletedStats[key] = (created, generation);
                if (_deletedStats.Count > 200_000)
                {
                    // xapi forgets old deleted rows too; then a client with an older token misses those deletes.
                    foreach (var old in _deletedStats.OrderBy(kv => kv.Value.Deleted).Take(100_000).Select(kv => kv.Key).ToList())
                    {
                        _deletedStats.Remove(old);
                    }
                }

                break;
            default:
                _stats[key] = (_stats.TryGetValue(key, out var before) ? before.Created : FirstGeneration, generation);
                break;
        }

        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    internal long EventId => _eventId;

    internal IEnumerable<KeyValuePair<(string Class, string Ref), (long Created, long Modified)>> LiveStats => _stats;

    internal IEnumerable<KeyValuePair<(string Class, string Ref), (long Created, long Deleted)>> DeletedStats => _deletedStats;

    internal (long Created, long Modified) StatOf(string cls, string r) =>
        _stats.TryGetValue((cls, r), out var stat) ? stat : (FirstGeneration, FirstGeneration);

    internal Task ChangedTask => _changed.Task;

    // ---- first change and timed faults ---------------------------------------------------------

    internal void NoteStateChange()
    {
        if (_firstChangeAt is not null)
        {
            return;
        }

        _firstChangeAt = Now;
        foreach (var f in Scenario.Faults)
        {
            switch (f.Type)
            {
                case "xapiOutage":
                    var start = _firstChangeAt.Value + f.AtSeconds!.Value;
                    var end = start + f.DurationSeconds!.Value;
                    Schedule(start, () =>
                    {
                        OutageUntil = end;
                        Audit.Event("xapi.outage", new Dictionary<string, object?> { ["host"] = Master.Name, ["until"] = end });
                        _environment?.XapiServing(Master, false);
                    });
                    Schedule(end, () =>
                    {
                        OutageUntil = null;
                        if (Master.Power == HostPower.Up)
                        {
                            _environment?.XapiServing(Master, true);
                        }
                    });
                    break;
                case "memberEmergency":
                    var member = Hosts.First(h => h.Name == f.Host);
                    var from = _firstChangeAt.Value + f.AtSeconds!.Value;
                    var error = f.Error is { Count: > 0 } e ? e.ToArray() : CannotReachMaster;
                    Schedule(from, () =>
                    {
                        // Its xapi restarted and cannot reach the master, or the master answers Pool.hello with an error.
                        member.EmergencyError = error;
                        Audit.Event("host.emergencyMode", new Dictionary<string, object?> { ["host"] = member.Name, ["error"] = error[0] });
                    });
                    Schedule(from + f.DurationSeconds!.Value, () =>
                    {
                        if (member.EmergencyError == error)
                        {
                            member.EmergencyError = null;
                            Audit.Event("host.emergencyModeEnd", new Dictionary<string, object?> { ["host"] = member.Name });
                        }
                    });
                    break;
                case "vmStarts":
                    var spec = f.NewVm!;
                    Schedule(_firstChangeAt.Value + f.AtSeconds!.Value, () => StartNewVm(spec));
                    break;
                case "vmBusy" when f.AtSeconds is { } at:
                    var busy = Vms.First(v => v.Name == f.Vm);
                    Schedule(_firstChangeAt.Value + at, () => MakeBusy(busy, f.Operation ?? "export", Now + f.DurationSeconds!.Value));
                    break;
            }
        }
    }

    /// <summary>A VM busy with another operation (a backup's export or snapshot) until <paramref name="until"/>: XAPI
    /// lists it in current_operations and refuses to migrate it (OTHER_OPERATION_IN_PROGRESS, ocaml/xapi/xapi_vm_lifecycle.ml).</summary>
    private void MakeBusy(SimVm vm, string operation, double until)
    {
        var op = NewRef();
        vm.CurrentOperations[op] = operation;
        Touch("vm", vm.Ref, "mod");
        Audit.Event("vm.busy", new Dictionary<string, object?> { ["vm"] = vm.Name, ["operation"] = operation, ["until"] = until });
        Schedule(until, () =>
        {
            vm.CurrentOperations.Remove(op);
            Touch("vm", vm.Ref, "mod");
            Audit.Event("vm.idle", new Dictionary<string, object?> { ["vm"] = vm.Name, ["operation"] = operation });
        });
    }

    internal double? OutageUntil { get; private set; }

    internal bool RandomFault(string type)
    {
        foreach (var f in Scenario.Faults.Where(f => f.Type == type))
        {
            if (f.Times > 0 && _faultRandom.NextDouble() < (f.Probability ?? 0.05))
            {
                f.Times--;
                return true;
            }
        }

        return false;
    }

    private void StartNewVm(VmSpec spec)
    {
        var wanted = spec.Host is null ? null : Hosts.First(h => h.Name == spec.Host);
        var need = (spec.MemoryMiB + LabMemory.OverheadMiB(spec.MemoryMiB)) * LabMemory.MiB;
        var host = wanted is { Enabled: true, Power: HostPower.Up } && FreeBytes(wanted) >= need
            ? wanted
            : Hosts.Where(h => h.Enabled && h.Power == HostPower.Up && FreeBytes(h) >= need).OrderByDescending(FreeBytes).FirstOrDefault();
        if (host is null)
        {
            Audit.Event("vm.startFailed", new Dictionary<string, object?> { ["vm"] = spec.Name, ["reason"] = "HOST_NOT_ENOUGH_FREE_MEMORY" });
            return;
        }

        var copy = new VmSpec
        {
            Name = spec.Name,
            Host = host.Name,
            MemoryMiB = spec.MemoryMiB,
            PowerState = "Running",
            Srs = spec.Srs ?? [Srs.First(s => s.Shared).Name],
            PvDrivers = spec.PvDrivers,
            HaProtected = spec.HaProtected,
            Pci = spec.Pci,
            Vgpu = spec.Vgpu,
            Vusb = spec.Vusb,
            VgpuSuspendable = spec.VgpuSuspendable,
            DomainType = spec.DomainType,
            FeatureSuspend = spec.FeatureSuspend,
            CantSuspendReason = spec.CantSuspendReason,
            Nomigrate = spec.Nomigrate,
            NestedVirt = spec.NestedVirt,
            CdromIso = spec.CdromIso,
            AffinityGroup = spec.AffinityGroup,
        };
        AddVm(copy);
        Touch("host", host.Ref, "mod");
        Touch("host_metrics", host.MetricsRef, "mod");
        Audit.Event("vm.start", new Dictionary<string, object?> { ["vm"] = spec.Name, ["host"] = host.Name });
    }

    // ---- reboots -------------------------------------------------------------------------------

    internal void ScheduleShutdown(SimHost h, bool powerOff)
    {
        h.Power = HostPower.ShuttingDown;
        // xapi_host.ml reboot and shutdown both record `shutdown in current_operations (shutdown_and_reboot_common).
        h.CurrentOperations[NewRef()] = "shutdown";
        Touch("host", h.Ref, "mod");
        Schedule(Now + 10, () => GoDown(h, powerOff));
    }

    private void GoDown(SimHost h, bool powerOff)
    {
        foreach (var m in _migrations.Where(m => m.From == h || m.To == h).ToList())
        {
            FinishMigration(m, ["VM_MIGRATE_FAILED", m.Vm.Ref, m.From.Ref, m.To.Ref, "host went down"]);
        }

        var lost = Vms.Where(v => v.ResidentOn == h && v.IsRunning && !v.IsControlDomain).ToList();
        foreach (var vm in lost)
        {
            vm.PowerState = "Halted";
            vm.ResidentOn = null;
            RemoveVmGuidances(vm, "restart_device_model", "restart_vm");
            Touch("vm", vm.Ref, "mod");
            Audit.Event("vm.halted", new Dictionary<string, object?> { ["vm"] = vm.Name, ["reason"] = $"host {h.Name} went down" });
        }

        if (lost.Count > 0)
        {
            Audit.Violation($"host {h.Name} went down while running {lost.Count} VM(s): {string.Join(", ", lost.Select(v => v.Name).Take(10))}{(lost.Count > 10 ? ", ..." : "")} were shut down");
        }

        h.Power = HostPower.Down;
        h.Live = false;
        h.EmergencyError = null;
        h.CurrentOperations.Clear();
        Touch("host", h.Ref, "mod");
        Touch("host_metrics", h.MetricsRef, "mod");
        Audit.Event("host.down", new Dictionary<string, object?> { ["host"] = h.Name });
        if (h == Master)
        {
            // Every session and task dies with the master's toolstack (datamodel.ml: session and task are
            // PersistNothing), without a del event: the database comes back without them.
            Sessions.Clear();
            foreach (var task in Tasks.Keys.ToList())
            {
                Tasks.Remove(task);
                _stats.Remove(("task", task));
            }
        }

        _environment?.XapiServing(h, false);
        _environment?.HostPowered(h, false);
        if (!h.NeverReturns && !powerOff)
        {
            ScheduleBoot(h);
        }
    }

    internal void PowerOn(SimHost h)
    {
        if (h.Power == HostPower.Down && !h.NeverReturns)
        {
            ScheduleBoot(h);
        }
    }

    /// <summary>
    /// The boot of a host that is down: its sshd answers <c>pool.sshBeforeXapiSeconds</c> before xapi starts (sshd.service
    /// needs only the network; scripts/xapi.service starts after xcp-networkd, xenopsd-xc, xcp-rrdd, time-sync.target
    /// and more), then <see cref="ComeUp"/>: xapi starts, boot_time and agent_start_time are set, the host is live.
    /// </summary>
    private void ScheduleBoot(SimHost h)
    {
        var bootId = Guid.NewGuid().ToString();
        h.NextBootId = bootId;
        var sshLead = Math.Clamp(Scenario.Pool.SshBeforeXapiSeconds, 0, h.RebootSeconds);
        Schedule(Now + h.RebootSeconds - sshLead, () =>
        {
            if (h.Power == HostPower.Down && h.NextBootId == bootId)
            {
                _environment?.SshAnswering(h, bootId);
            }
        });
        Schedule(Now + h.RebootSeconds, () => ComeUp(h));
    }

    private void ComeUp(SimHost h)
    {
        var now = NowTime;
        h.Power = HostPower.Up;
        h.Live = true;
        h.BootTime = now;
        h.AgentStartTime = now;
        h.BootId = h.NextBootId ?? Guid.NewGuid().ToString();
        h.NextBootId = null;
        h.BootCount++;
        // Pool.hello marks a member disabled until its toolstack is ready (xapi/xapi_pool.ml hello).
        h.Enabled = false;
        RemoveGuidancesAtStart(h, onBoot: true);
        // The legacy list is read from /run/reboot-required.hfxs at every start (xapi/create_misc.ml
        // create_updates_requiring_reboot_info, xapi/xapi_globs.ml): /run does not survive the boot.
        h.UpdatesRequiringReboot.Clear();
        // storage_access.ml resynchronise_pbds at start: after a boot the storage manager has nothing attached.
        foreach (var pbd in Pbds.Values.Where(p => p.Host == h && p.CurrentlyAttached))
        {
            pbd.CurrentlyAttached = false;
            Touch("pbd", pbd.Ref, "mod");
        }

        h.ToolstackReadyAt = Now + Scenario.Pool.ToolstackStartSeconds;
        h.MetricsUpdated = now;
        Touch("host", h.Ref, "mod");
        Touch("host_metrics", h.MetricsRef, "mod");
        Audit.Event("host.up", new Dictionary<string, object?> { ["host"] = h.Name, ["bootCount"] = h.BootCount });
        _environment?.HostPowered(h, true);
        if (OutageUntil is null || h != Master)
        {
            _environment?.XapiServing(h, true);
        }

        var boot = h.BootCount;
        Schedule(h.ToolstackReadyAt, () => ToolstackReady(h, boot));
    }

    /// <summary>
    /// What a member's xapi answers before dispatch while it starts or cannot reach its master: HOST_STILL_BOOTING until
    /// its toolstack is up, then <see cref="SimHost.EmergencyError"/>.
    /// </summary>
    internal string[]? EmergencyErrorOf(SimHost h) =>
        h.ToolstackReadyAt > Now ? ["HOST_STILL_BOOTING"] : h.EmergencyError;

    /// <summary>Whether the master's xapi answers (what a member's Pool.hello needs).</summary>
    private bool MasterServing =>
        Master.Power == HostPower.Up && Master.ToolstackReadyAt <= Now && OutageUntil is null && Master.EmergencyError is null;

    // The error xapi.ml attempt_host_status_check_with_coordinator sets when Pool.hello cannot connect:
    // INTERNAL_ERROR [ExnHelper.string_of_exn exn]. The text is xapi's rendering of the connection failure; this one is
    // the lab's stand-in for it.
    internal static readonly string[] CannotReachMaster = ["INTERNAL_ERROR", "INTERNAL_ERROR: [ Connection failed: the coordinator is unreachable. ]"];

    /// <summary>
    /// xapi_host_helpers.ml update_allowed_operations: while a clustered SR is plugged, a host that is not live, or the
    /// SR's health-check task ("recovering"), removes shutdown, reboot and apply_updates from every host's allowed
    /// operations: CLUSTERED_SR_DEGRADED [sr] (or [the task's description]).
    /// </summary>
    internal string[]? ClusteredSrDegraded()
    {
        if (Srs.FirstOrDefault(s => s.Clustered) is not { } sr)
        {
            return null;
        }

        if (Hosts.Any(x => !x.Live))
        {
            return ["CLUSTERED_SR_DEGRADED", sr.Ref];
        }

        return Srs.FirstOrDefault(s => s.Clustered && s.RecoveringUntil > Now) is { } recovering
            ? ["CLUSTERED_SR_DEGRADED", $"Health check for SR {recovering.Uuid}"]
            : null;
    }

    /// <summary>A host rejoined: each clustered SR with a recovery time recovers for that long.</summary>
    private void ClusteredSrsRecover(SimHost h)
    {
        foreach (var sr in Srs.Where(s => s.Clustered && s.RecoverySeconds > 0))
        {
            sr.RecoveringUntil = Now + sr.RecoverySeconds;
            Audit.Event("sr.recovering", new Dictionary<string, object?> { ["sr"] = sr.Name, ["host"] = h.Name, ["until"] = sr.RecoveringUntil });
            foreach (var x in Hosts)
            {
                Touch("host", x.Ref, "mod");
            }

            Schedule(sr.RecoveringUntil.Value, () =>
            {
                foreach (var x in Hosts)
                {
                    Touch("host", x.Ref, "mod");
                }
            });
        }
    }

    /// <summary>
    /// The toolstack is up: consider_enabling_host (xapi/xapi_host_helpers.ml). The host enables itself unless, from
    /// xapi 24.10.0, a mandatory guidance is pending ("Leave host disabled"), or, from 25.31.0, host.disable
    /// auto_enable=false persisted host_auto_enable=false. Before 24.10.0 (v1.249.41) it enables itself regardless.
    /// A member whose master does not answer stays in emergency mode first.
    /// </summary>
    private void ToolstackReady(SimHost h, int boot, bool afterBoot = true)
    {
        if (h.BootCount != boot || h.Power != HostPower.Up)
        {
            return;
        }

        if (h != Master && !MasterServing)
        {
            // xapi.ml server_init, Pool_role.Slave: a member that starts while its master does not answer stays in
            // emergency mode, retrying Pool.hello every 5 s ("I think the error is a temporary one, retrying in 5s").
            if (h.EmergencyError is null)
            {
                h.EmergencyError = CannotReachMaster;
                Audit.Event("host.emergencyMode", new Dictionary<string, object?> { ["host"] = h.Name, ["error"] = h.EmergencyError[0] });
            }

            Schedule(Now + 5, () => ToolstackReady(h, boot, afterBoot));
            return;
        }

        h.EmergencyError = null;

        if (afterBoot && h.GuidanceOnReturn is { } g)
        {
            h.GuidanceOnReturn = null;
            if (!h.PendingGuidances.Contains(g))
            {
                h.PendingGuidances.Add(g);
            }
        }

        var allPbdsOk = PlugAtStart(h);
        var guidanceHolds = Profile.GuidanceKeepsHostDisabled && h.PendingGuidances.Count > 0;
        // consider_enabling_host_nolock: with HA armed only a host whose every PBD plugged is enabled; without HA it is
        // enabled even when one failed.
        h.Enabled = !guidanceHolds && h.AutoEnable && (!HaEnabled || allPbdsOk);
        h.AgentStartTime = NowTime;
        Touch("host", h.Ref, "mod");
        Audit.Event("host.toolstackReady", new Dictionary<string, object?> { ["host"] = h.Name, ["enabled"] = h.Enabled });
        if (afterBoot)
        {
            ClusteredSrsRecover(h);
        }

        AutostartVms();
    }

    /// <summary>
    /// create_storage.ml plug_unplugged_pbds: the toolstack plugs each of the host's unplugged PBDs; a plug that fails
    /// (the scenario's pbdPlugFails fault, for as many boots as it says) leaves it unplugged
    /// (PBD_PLUG_FAILED_ON_SERVER_START). True when every PBD is plugged.
    /// </summary>
    private bool PlugAtStart(SimHost h)
    {
        var ok = true;
        foreach (var pbd in Pbds.Values.Where(p => p.Host == h && !p.CurrentlyAttached))
        {
            if (PlugFaults.TryGetValue((h.Name, pbd.Sr.Name), out var fault) && fault.BootsLeft > 0)
            {
                fault.BootsLeft--;
                ok = false;
                Audit.Event("pbd.plugFailed", new Dictionary<string, object?> { ["host"] = h.Name, ["sr"] = pbd.Sr.Name });
                continue;
            }

            pbd.CurrentlyAttached = true;
            Touch("pbd", pbd.Ref, "mod");
        }

        return ok;
    }

    /// <summary>The pbdPlugFails faults by (host, SR): how many more boots fail to plug, and what PBD.plug answers meanwhile.</summary>
    internal Dictionary<(string Host, string Sr), PlugFault> PlugFaults { get; } = [];

    internal sealed class PlugFault
    {
        public int BootsLeft { get; set; }

        /// <summary>The error PBD.plug gives (null: a later PBD.plug works, the storage was only late at boot).</summary>
        public string[]? Error { get; init; }
    }

    /// <summary>
    /// What every toolstack start removes (xapi/dbsync_slave.ml remove_pending_guidances, through
    /// xapi/xapi_host_helpers.ml remove_pending_guidance: from all three lists): restart_toolstack always; at a boot also
    /// reboot_host and the three livepatch-failure guidances.
    /// </summary>
    private static void RemoveGuidancesAtStart(SimHost h, bool onBoot)
    {
        string[] cleared = onBoot
            ? ["restart_toolstack", "reboot_host", "reboot_host_on_livepatch_failure", "reboot_host_on_kernel_livepatch_failure", "reboot_host_on_xen_livepatch_failure"]
            : ["restart_toolstack"];
        foreach (var list in new[] { h.PendingGuidances, h.PendingGuidancesRecommended, h.PendingGuidancesFull })
        {
            list.RemoveAll(g => cleared.Contains(g));
        }
    }

    /// <summary>
    /// host.restart_agent: the toolstack restarts after a 10 s pause (idl/datamodel_host.ml restart_agent). Going down it
    /// marks the host disabled (xapi/xapi_fuse.ml); starting, it removes restart_toolstack and considers enabling the host,
    /// as after a boot but without clearing the reboot guidances. The master's sessions die with it.
    /// </summary>
    internal void ScheduleToolstackRestart(SimHost h)
    {
        Schedule(Now + 10, () =>
        {
            if (h.Power != HostPower.Up)
            {
                return;
            }

            h.Enabled = false;
            RemoveGuidancesAtStart(h, onBoot: false);
            h.ToolstackReadyAt = Now + Scenario.Pool.ToolstackStartSeconds;
            if (h == Master)
            {
                Sessions.Clear();
            }

            Touch("host", h.Ref, "mod");
            Audit.Event("host.toolstackRestart", new Dictionary<string, object?> { ["host"] = h.Name });
            var boot = h.BootCount;
            Schedule(h.ToolstackReadyAt, () => ToolstackReady(h, boot, afterBoot: false));
        });
    }

    /// <summary>
    /// xen-api scripts/xapi-autostart-vms, run once xapi has initialised on a booted host: when the pool's
    /// other_config:auto_poweron is "true", 'xe vm-start other-config:auto_poweron=true power-state=halted --multiple'
    /// starts every such halted VM, wherever XAPI places it (best effort, errors ignored).
    /// </summary>
    private void AutostartVms()
    {
        if (PoolOtherConfig.GetValueOrDefault("auto_poweron") != "true")
        {
            return;
        }

        foreach (var vm in Vms.Where(v => !v.IsControlDomain && v.PowerState == "Halted" && v.OtherConfig.GetValueOrDefault("auto_poweron") == "true").ToList())
        {
            var host = Hosts.Where(x => x.Enabled && x.Power == HostPower.Up && FreeBytes(x) >= vm.NeededBytes).OrderByDescending(FreeBytes).FirstOrDefault();
            if (host is null)
            {
                continue;
            }

            vm.PowerState = "Running";
            vm.ResidentOn = host;
            Touch("vm", vm.Ref, "mod");
            Touch("host", host.Ref, "mod");
            Touch("host_metrics", host.MetricsRef, "mod");
            Audit.Event("vm.autostart", new Dictionary<string, object?> { ["vm"] = vm.Name, ["host"] = host.Name });
        }
    }
}
