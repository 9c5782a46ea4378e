using RollingReboot.Core.Pool;
using RollingReboot.Core.Planning;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>Builds pool snapshots for tests: free memory is derived from the hosts' sizes and their running VMs.</summary>
internal sealed class TestPool
{
    public const long MiB = 1024L * 1024;
    public const long GiB = 1024 * MiB;
    public const string SharedSr = "sr-nfs";

    private readonly List<HostSpec> _hosts = [];
    private readonly List<VmSpec> _vms = [];
    private readonly List<SrInfo> _srs = [new(SharedSr, "nfs-primary", true, null)];

    public string Name { get; init; } = "POOL-1";

    public string? Master { get; set; }

    public HaSettings Ha { get; set; } = HaSettings.Disabled;

    public List<string> Operations { get; } = [];

    public IReadOnlyList<HostSpec> Hosts => _hosts;

    public IReadOnlyList<VmSpec> Vms => _vms;

    public static string HostUuid(string name) => "host-uuid-" + name;

    public static string VmUuid(string name) => "vm-uuid-" + name;

    /// <summary>Memory with an overhead like XAPI's (about 1/128), as the lab accounts it.</summary>
    public static long WithOverhead(long memoryMiB) => (memoryMiB + ((memoryMiB + 127) / 128)) * MiB;

    public HostSpec AddHost(string name, long totalMiB, bool master = false)
    {
        var host = new HostSpec { Name = name, TotalMiB = totalMiB };
        _hosts.Add(host);
        if (master)
        {
            Master = name;
        }

        return host;
    }

    public VmSpec AddVm(string name, string? host, long memoryBytes)
    {
        var vm = new VmSpec { Name = name, Host = host, MemoryBytes = memoryBytes };
        _vms.Add(vm);
        return vm;
    }

    public TestPool AddSr(string uuid, string name, bool shared, string? localHost = null)
    {
        _srs.Add(new SrInfo(uuid, name, shared, localHost is null ? null : HostUuid(localHost)));
        return this;
    }

    public long UsedBytes(string host) =>
        _vms.Where(v => v.Host == host && v.PowerState is "Running" or "Paused").Sum(v => v.MemoryBytes);

    public PoolSnapshot Build()
    {
        var hosts = _hosts.Select(h => new HostState(
            HostUuid(h.Name), h.Name, "10.0.0." + (_hosts.IndexOf(h) + 1), h.Enabled, h.Live,
            h.TotalMiB * MiB,
            ((h.TotalMiB - h.Dom0MiB) * MiB) - UsedBytes(h.Name),
            0, h.BootTime, h.BootTime, h.PendingGuidances, h.Updates, h.Operations)
        {
            PendingGuidancesRecommended = h.Recommended,
            PendingGuidancesFull = h.Full,
            RpmPatchInstallationTime = h.RpmPatchInstallationTime,
            Software = PoolSoftware.From(h.SoftwareVersion),
        }).ToList();
        var vms = _vms.Select(v => new VmState(
            VmUuid(v.Name), v.Name, v.PowerState, v.Host is null ? null : HostUuid(v.Host), v.MemoryBytes, v.Refusal,
            v.Disks, v.Cds, v.HaPriority, v.Operations)).ToList();
        return new PoolSnapshot(
            "pool-uuid-" + Name, Name, HostUuid(Master ?? _hosts[0].Name), Ha,
            new Dictionary<string, string>(), Operations, hosts, vms, [.. _srs]);
    }

    internal sealed class HostSpec
    {
        public required string Name { get; init; }

        public long TotalMiB { get; set; }

        public long Dom0MiB { get; set; } = 4096;

        public bool Enabled { get; set; } = true;

        public bool Live { get; set; } = true;

        public List<string> PendingGuidances { get; } = ["reboot_host"];

        public List<string> Updates { get; } = [];

        public List<string> Operations { get; } = [];

        public List<string> Recommended { get; } = [];

        public List<string> Full { get; } = [];

        public DateTimeOffset? BootTime { get; set; }

        public DateTimeOffset? RpmPatchInstallationTime { get; set; }

        /// <summary>host.software_version; empty: not read (the newest xapi behaviour is assumed).</summary>
        public Dictionary<string, string> SoftwareVersion { get; } = [];
    }

    internal sealed class VmSpec
    {
        public required string Name { get; init; }

        public string? Host { get; set; }

        public long MemoryBytes { get; set; }

        public string PowerState { get; set; } = "Running";

        public bool PvDrivers { get; set; } = true;

        public List<string> Disks { get; } = [SharedSr];

        public List<string> Cds { get; } = [];

        public bool Pci { get; set; }

        public bool Vgpu { get; set; }

        public bool Vusb { get; set; }

        public string HaPriority { get; set; } = "";

        public List<string> Operations { get; } = [];

        /// <summary>What XAPI's allowed_operations would say of this VM's hardware, in check_operation_error's order
        /// (the planner takes XAPI's verdict, it does not guess).</summary>
        public string? Refusal => PowerState is not ("Running" or "Paused") || Operations.Count > 0 ? null
            : !PvDrivers ? PlanCodes.VmLacksFeature
            : Pci ? PlanCodes.VmHasPci
            : Vgpu ? PlanCodes.VmHasVgpu
            : Vusb ? PlanCodes.VmHasVusb
            : null;
    }
}
