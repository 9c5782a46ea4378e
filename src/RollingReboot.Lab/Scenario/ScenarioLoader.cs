using System.Text.Json;
using System.Text.Json.Nodes;

namespace RollingReboot.Lab.Scenario;

public sealed class ScenarioException(string message) : Exception(message)
{
    public ScenarioException() : this("invalid scenario") { }

    public ScenarioException(string message, Exception inner) : this(message + ": " + inner.Message) { }
}

/// <summary>Reads, completes (generate) and validates a scenario. Every problem is named with its place.</summary>
public static class ScenarioLoader
{
    private static readonly string[] s_faultTypes =
    [
        "migrationFails", "hostDoesNotReturn", "slowReboot", "pendingGuidance", "xapiOutage", "cloudstackError", "unmanageFails", "cloudstackStaleVm", "vmStarts",
        "sessionInvalid", "connectionReset", "sshAuthFails", "sshHostKeyChanged", "vmBusy", "memberEmergency", "pbdPlugFails",
        "updateFails", "livepatchFails", "updaterBusy",
    ];

    public static ScenarioFile LoadFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ScenarioException($"cannot read scenario file {path}: {e.Message}");
        }

        return Parse(text, path);
    }

    public static ScenarioFile Parse(string text, string source = "scenario")
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject
                ?? throw new ScenarioException($"{source}: the scenario must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new ScenarioException($"{source}: not valid JSON ({e.Message})");
        }

        var faults = root["faults"] as JsonArray;
        root.Remove("faults");
        ScenarioFile scenario;
        try
        {
            scenario = root.Deserialize<ScenarioFile>(ScenarioFile.JsonOptions) ?? throw new ScenarioException($"{source}: empty scenario");
        }
        catch (JsonException e)
        {
            throw new ScenarioException($"{source}: {e.Message}");
        }

        scenario.Faults = ParseFaults(faults, source);
        Complete(scenario);
        Validate(scenario, source);
        ResolveProfileDefaults(scenario);
        return scenario;
    }

    private static List<FaultSpec> ParseFaults(JsonArray? faults, string source)
    {
        var list = new List<FaultSpec>();
        if (faults is null)
        {
            return list;
        }

        for (var i = 0; i < faults.Count; i++)
        {
            if (faults[i] is not JsonObject f)
            {
                throw new ScenarioException($"{source}: faults[{i}] must be an object");
            }

            var vmNode = f["vm"];
            f.Remove("vm");
            FaultSpec fault;
            try
            {
                fault = f.Deserialize<FaultSpec>(ScenarioFile.JsonOptions) ?? new FaultSpec();
                if (vmNode is JsonObject vmObject)
                {
                    fault.NewVm = vmObject.Deserialize<VmSpec>(ScenarioFile.JsonOptions);
                }
                else if (vmNode is not null)
                {
                    fault.Vm = vmNode.GetValue<string>();
                }
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                throw new ScenarioException($"{source}: faults[{i}]: {e.Message}");
            }

            list.Add(fault);
        }

        return list;
    }

    private static void Complete(ScenarioFile s)
    {
        if (s.Srs.Count == 0)
        {
            s.Srs.Add(new SrSpec { Name = "nfs-primary", Shared = true });
        }

        if (s.Hosts.Count > 0 && !s.Hosts.Any(h => h.Master))
        {
            s.Hosts[0].Master = true;
        }

        var firstShared = s.Srs.FirstOrDefault(r => r.Shared)?.Name;
        foreach (var vm in s.Vms)
        {
            vm.Srs ??= firstShared is null ? [] : [firstShared];
        }

        foreach (var g in s.Generate)
        {
            var rng = new Random(g.Seed);
            var counter = s.Vms.Count(v => v.Name.StartsWith(g.NamePrefix, StringComparison.Ordinal) && v.Name.EndsWith("-VM", StringComparison.Ordinal));
            var taken = s.Vms.Select(v => v.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var host in g.Hosts)
            {
                for (var i = 0; i < g.PerHost; i++)
                {
                    // Count on past names the scenario already uses (an explicit i-2-10-VM beside generated i-2-<n>-VM).
                    do
                    {
                        counter++;
                    }
                    while (taken.Contains($"{g.NamePrefix}{counter}-VM"));

                    s.Vms.Add(new VmSpec
                    {
                        Name = $"{g.NamePrefix}{counter}-VM",
                        Host = host,
                        MemoryMiB = g.MemoryMiB.Count == 0 ? 4096 : g.MemoryMiB[rng.Next(g.MemoryMiB.Count)],
                        Srs = firstShared is null ? [] : [firstShared],
                    });
                }
            }
        }
    }

    /// <summary>
    /// hosts[].enabled left out: enabled, as the contract has it, except a host that host.apply_updates left with mandatory
    /// guidance on xapi 24.10.0+, which it disabled (xapi/xapi_host.ml apply_updates).
    /// </summary>
    private static void ResolveProfileDefaults(ScenarioFile s)
    {
        var profile = XapiProfile.Parse(s.Pool.XapiVersion, s.Pool.ProductBrand);
        foreach (var h in s.Hosts)
        {
            h.Enabled ??= !(profile.GuidanceKeepsHostDisabled && MandatoryGuidances(h, profile).Count > 0);
        }
    }

    private static void Validate(ScenarioFile s, string source)
    {
        var problems = new List<string>();
        if (s.Hosts.Count == 0)
        {
            problems.Add("no hosts");
        }

        if (s.Hosts.Count > 250)
        {
            problems.Add($"{s.Hosts.Count} hosts: the lab gives each host an address in 127.0.0.0/24, at most 250");
        }

        Duplicates(s.Hosts.Select(h => h.Name), "host", problems);
        Duplicates(s.Vms.Select(v => v.Name), "VM", problems);
        Duplicates(s.Srs.Select(r => r.Name), "SR", problems);
        if (s.Hosts.Count(h => h.Master) > 1)
        {
            problems.Add("more than one host is master: " + string.Join(", ", s.Hosts.Where(h => h.Master).Select(h => h.Name)));
        }

        XapiProfile? profile = null;
        try
        {
            profile = XapiProfile.Parse(s.Pool.XapiVersion, s.Pool.ProductBrand);
        }
        catch (ScenarioException e)
        {
            problems.Add(e.Message);
        }

        var hosts = s.Hosts.Where(h => h.Name.Length > 0).GroupBy(h => h.Name).ToDictionary(g => g.Key, g => g.First());
        if (profile is not null)
        {
            foreach (var h in s.Hosts)
            {
                ValidateGuidances(h, profile, problems);
            }
        }

        foreach (var h in s.Hosts)
        {
            if (string.IsNullOrWhiteSpace(h.Name))
            {
                problems.Add("a host has no name");
            }

            if (h.MemoryMiB <= 0 || h.Dom0MemoryMiB < 0 || h.Dom0MemoryMiB >= h.MemoryMiB)
            {
                problems.Add($"host {h.Name}: memoryMiB must be positive and larger than dom0MemoryMiB");
            }

            if (h.RebootSeconds < 0)
            {
                problems.Add($"host {h.Name}: rebootSeconds must not be negative");
            }
        }

        var srs = s.Srs.GroupBy(r => r.Name).ToDictionary(g => g.Key, g => g.First());
        foreach (var r in s.Srs)
        {
            if (!r.Shared && r.Host is not null && !hosts.ContainsKey(r.Host))
            {
                problems.Add($"SR {r.Name}: host {r.Host} is not in hosts");
            }
        }

        if (s.Pool.Ha is { Enabled: true, HeartbeatSr: { } hb } && (!srs.TryGetValue(hb, out var hbSr) || !hbSr.Shared))
        {
            problems.Add($"pool.ha.heartbeatSr {hb} must name a shared SR in srs");
        }

        if (s.Pool.ToolstackStartSeconds < 0 || s.Pool.SshBeforeXapiSeconds < 0)
        {
            problems.Add("pool.toolstackStartSeconds and pool.sshBeforeXapiSeconds must not be negative");
        }

        var used = new Dictionary<string, long>();
        foreach (var vm in s.Vms)
        {
            if (string.IsNullOrWhiteSpace(vm.Name))
            {
                problems.Add("a VM has no name");
            }

            if (vm.PowerState is not ("Running" or "Halted" or "Paused" or "Suspended"))
            {
                problems.Add($"VM {vm.Name}: powerState {vm.PowerState} is not Running, Halted, Paused or Suspended");
            }

            if (vm.MemoryMiB <= 0)
            {
                problems.Add($"VM {vm.Name}: memoryMiB must be positive");
            }

            if (vm.ShutdownSeconds < 0 || !double.IsFinite(vm.ShutdownSeconds))
            {
                problems.Add($"VM {vm.Name}: shutdownSeconds must be zero or more");
            }

            if (vm.Host is not null && !hosts.ContainsKey(vm.Host))
            {
                problems.Add($"VM {vm.Name}: host {vm.Host} is not in hosts");
            }
            else if (vm.PowerState is "Running" or "Paused")
            {
                if (vm.Host is null)
                {
                    problems.Add($"VM {vm.Name}: a {vm.PowerState} VM needs a host");
                }
                else
                {
                    used[vm.Host] = used.GetValueOrDefault(vm.Host) + vm.MemoryMiB + LabMemory.OverheadMiB(vm.MemoryMiB);
                    var h = hosts[vm.Host];
                    if (vm.MemoryMiB > h.MemoryMiB - h.Dom0MemoryMiB)
                    {
                        problems.Add($"VM {vm.Name}: {vm.MemoryMiB} MiB is larger than host {vm.Host} can hold ({h.MemoryMiB - h.Dom0MemoryMiB} MiB beside dom0)");
                    }
                }
            }

            foreach (var sr in vm.Srs ?? [])
            {
                if (!srs.ContainsKey(sr))
                {
                    problems.Add($"VM {vm.Name}: SR {sr} is not in srs");
                }
            }
        }

        if (profile is { GuidanceKeepsHostDisabled: true })
        {
            foreach (var h in s.Hosts.Where(h => MandatoryGuidances(h, profile).Any(g => g.StartsWith("reboot_host", StringComparison.Ordinal))))
            {
                var resident = s.Vms.Where(v => v.Host == h.Name && v.PowerState is "Running" or "Paused").Select(v => v.Name).ToList();
                if (resident.Count > 0)
                {
                    problems.Add($"host {h.Name}: mandatory guidance reboot_host (what pendingReboot means on {profile}) comes from host.apply_updates, which refuses a host still running VMs (HOST_EVACUATION_IS_REQUIRED) and leaves it disabled, so none can arrive; it runs {string.Join(", ", resident.Take(3))}{(resident.Count > 3 ? ", ..." : "")}: give it \"pendingReboot\": false, or no VMs");
                }
            }
        }

        foreach (var (host, mib) in used)
        {
            var h = hosts[host];
            if (mib > h.MemoryMiB - h.Dom0MemoryMiB)
            {
                problems.Add($"host {host}: its running VMs need {mib} MiB with overheads, more than its {h.MemoryMiB - h.Dom0MemoryMiB} MiB beside dom0");
            }
        }

        foreach (var g in s.Generate)
        {
            foreach (var h in g.Hosts.Where(h => !hosts.ContainsKey(h)))
            {
                problems.Add($"generate: host {h} is not in hosts");
            }

            if (g.PerHost < 0 || g.MemoryMiB.Any(m => m <= 0))
            {
                problems.Add("generate: perHost and memoryMiB must not be negative");
            }
        }

        var vms = s.Vms.Select(v => v.Name).ToHashSet();
        for (var i = 0; i < s.Faults.Count; i++)
        {
            var f = s.Faults[i];
            var at = $"faults[{i}] ({f.Type})";
            if (!s_faultTypes.Contains(f.Type))
            {
                problems.Add($"{at}: unknown fault type; known: {string.Join(", ", s_faultTypes)}");
                continue;
            }

            if (f.Type is "updateFails" or "livepatchFails" or "updaterBusy")
            {
                ValidateUpdateFault(f, at, hosts, profile, problems);
                continue;
            }

            if (f.Type == "migrationFails" && (f.Vm is null || !vms.Contains(f.Vm)))
            {
                problems.Add($"{at}: vm {f.Vm ?? "(missing)"} is not in vms");
            }

            if (f.Type is "hostDoesNotReturn" or "slowReboot" or "pendingGuidance" && (f.Host is null || !hosts.ContainsKey(f.Host)))
            {
                problems.Add($"{at}: host {f.Host ?? "(missing)"} is not in hosts");
            }

            if (f.Type is "sshAuthFails" or "sshHostKeyChanged" && (f.Host is null || !hosts.ContainsKey(f.Host)))
            {
                problems.Add($"{at}: host {f.Host ?? "(missing)"} is not in hosts");
            }

            if (f.Type == "memberEmergency")
            {
                if (f.Host is null || !hosts.TryGetValue(f.Host, out var member))
                {
                    problems.Add($"{at}: host {f.Host ?? "(missing)"} is not in hosts");
                }
                else if (member.Master)
                {
                    problems.Add($"{at}: host {f.Host} is the master; only a member goes into emergency mode");
                }

                if (f.AtSeconds is null or < 0 || f.DurationSeconds is null or <= 0)
                {
                    problems.Add($"{at}: atSeconds and durationSeconds are required");
                }
            }

            if (f.Type == "pbdPlugFails")
            {
                if (f.Host is null || !hosts.ContainsKey(f.Host))
                {
                    problems.Add($"{at}: host {f.Host ?? "(missing)"} is not in hosts");
                }

                if (f.Sr is null || !srs.TryGetValue(f.Sr, out var plugSr) || !plugSr.Shared)
                {
                    problems.Add($"{at}: sr {f.Sr ?? "(missing)"} is not a shared SR of srs");
                }

                if (f.Times < 1)
                {
                    problems.Add($"{at}: times (the boots whose plug fails) must be at least 1");
                }
            }

            if (f.Type == "pendingGuidance" && profile is { GuidanceKeepsHostDisabled: false })
            {
                problems.Add($"{at}: a pending guidance keeps a host disabled (host.enable refuses it) only from xapi 24.10.0; this pool runs {profile}");
            }

            if (f.Type == "pendingGuidance" && f.Guidance is { } g && !s_hostGuidances.Contains(g))
            {
                problems.Add($"{at}: guidance {g} is not a host guidance ({string.Join(", ", s_hostGuidances)})");
            }

            if (f.Type == "slowReboot" && f.RebootSeconds is null or < 0)
            {
                problems.Add($"{at}: rebootSeconds is required");
            }

            if (f.Type == "vmBusy" && (f.Vm is null || !vms.Contains(f.Vm) || f.DurationSeconds is null or <= 0))
            {
                problems.Add($"{at}: vm (a VM of the scenario) and durationSeconds are required");
            }

            if (f.Type == "xapiOutage" && (f.AtSeconds is null || f.DurationSeconds is null or <= 0))
            {
                problems.Add($"{at}: atSeconds and durationSeconds are required");
            }

            if (f.Type == "vmStarts")
            {
                if (f.NewVm is null || string.IsNullOrWhiteSpace(f.NewVm.Name))
                {
                    problems.Add($"{at}: vm must be a VM object with a name");
                }
                else if (vms.Contains(f.NewVm.Name))
                {
                    problems.Add($"{at}: VM {f.NewVm.Name} already exists");
                }
                else if (f.NewVm.Host is not null && !hosts.ContainsKey(f.NewVm.Host))
                {
                    problems.Add($"{at}: host {f.NewVm.Host} is not in hosts");
                }

                if (f.AtSeconds is null)
                {
                    problems.Add($"{at}: atSeconds is required");
                }
            }

            if (f.Type == "cloudstackError" && (string.IsNullOrEmpty(f.Command) || f.ErrorCode is null))
            {
                problems.Add($"{at}: command and errorCode are required");
            }

            if (f.Type == "cloudstackStaleVm" && (f.Vm is null || !vms.Contains(f.Vm)))
            {
                problems.Add($"{at}: vm {f.Vm ?? "(missing)"} is not in vms");
            }

            if (f.Type is "cloudstackError" or "unmanageFails" or "cloudstackStaleVm" && s.CloudStack is null)
            {
                problems.Add($"{at}: the scenario has no cloudstack section");
            }
        }

        for (var i = 0; i < (s.CloudStack?.AsyncJobs.Count ?? 0); i++)
        {
            var job = s.CloudStack!.AsyncJobs[i];
            var at = $"cloudstack.asyncJobs[{i}]";
            if (string.IsNullOrWhiteSpace(job.Cmd))
            {
                problems.Add($"{at}: cmd is required (the command's class, e.g. org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd)");
            }

            if ((job.Host is null ? 0 : 1) + (job.Vm is null ? 0 : 1) + (job.Cluster ? 1 : 0) != 1)
            {
                problems.Add($"{at}: give exactly one of host, vm or \"cluster\": true");
            }
            else if (job.Host is not null && !hosts.ContainsKey(job.Host))
            {
                problems.Add($"{at}: host {job.Host} is not in hosts");
            }
            else if (job.Vm is not null && !vms.Contains(job.Vm))
            {
                problems.Add($"{at}: vm {job.Vm} is not in vms");
            }

            if (job.DurationSeconds is <= 0)
            {
                problems.Add($"{at}: durationSeconds must be positive (leave it out for a job that never ends)");
            }

            if (string.IsNullOrWhiteSpace(job.Account))
            {
                problems.Add($"{at}: account must not be empty");
            }
        }

        ValidateUpdates(s, hosts, profile, problems);
        ValidateCloudStack(s, hosts, vms, problems);

        var m = s.Migration;
        if (m.StreamMBps <= 0 || m.HostLinkMBps <= 0 || m.SetupSeconds < 0 || m.DirtyRatio < 0)
        {
            problems.Add("migration: streamMBps and hostLinkMBps must be positive, setupSeconds and dirtyRatio not negative");
        }

        if (m.CompressionRatio is <= 0 or > 1 || m.CompressMBps <= 0)
        {
            problems.Add("migration: compressionRatio must be above 0 and at most 1, compressMBps positive");
        }

        ValidateNetworks(s, hosts, problems);

        if (problems.Count > 0)
        {
            throw new ScenarioException($"{source}: " + string.Join("; ", problems));
        }
    }

    private static void ValidateNetworks(ScenarioFile s, Dictionary<string, HostSpec> hosts, List<string> problems)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (n, i) in s.Networks.Select((n, i) => (n, i)))
        {
            var at = $"networks[{i}]";
            if (string.IsNullOrWhiteSpace(n.Name) || !names.Add(n.Name))
            {
                problems.Add($"{at}: name must be set and unique");
            }

            if (n.LinkMBps <= 0 || n.SpeedMbps < 0)
            {
                problems.Add($"{at}: linkMBps must be positive and speedMbps not negative");
            }

            foreach (var h in (n.Hosts ?? []).Concat(n.Unplugged).Concat(n.NoIp).Where(h => !hosts.ContainsKey(h)))
            {
                problems.Add($"{at}: host '{h}' is not a host of the scenario");
            }
        }
    }

    private static readonly string[] s_managedStates = ["Managed", "Unmanaged", "PrepareUnmanaged", "PrepareUnmanagedError"];
    private static readonly string[] s_resourceStates = ["Enabled", "Disabled", "Maintenance", "PrepareForMaintenance", "ErrorInMaintenance"];
    private static readonly string[] s_affinityTypes =
        ["host anti-affinity", "non-strict host anti-affinity", "host affinity", "non-strict host affinity", "ExplicitDedication"];

    private static void ValidateCloudStack(ScenarioFile s, Dictionary<string, HostSpec> hosts, HashSet<string> vms, List<string> problems)
    {
        if (s.CloudStack is not { } cs)
        {
            return;
        }

        if (!s_managedStates.Contains(cs.ManagedState, StringComparer.OrdinalIgnoreCase))
        {
            problems.Add($"cloudstack.managedState {cs.ManagedState} is not one of {string.Join(", ", s_managedStates)}");
        }

        if (cs.ScanIntervalSeconds <= 0 || cs.ConnectSeconds < 0)
        {
            problems.Add("cloudstack: scanIntervalSeconds must be positive and connectSeconds not negative");
        }

        if (cs.DefaultPageSize is 0 or < -1)
        {
            problems.Add("cloudstack.defaultPageSize must be positive, or -1 for no limit");
        }

        foreach (var h in cs.Hosts)
        {
            if (!hosts.ContainsKey(h.Name))
            {
                problems.Add($"cloudstack.hosts: host {h.Name} is not in hosts");
            }

            if (!s_resourceStates.Contains(h.ResourceState, StringComparer.Ordinal))
            {
                problems.Add($"cloudstack.hosts: host {h.Name}: resourceState {h.ResourceState} is not one of {string.Join(", ", s_resourceStates)}");
            }

            if (h.State is not null and not ("Up" or "Disconnected" or "Alert"))
            {
                problems.Add($"cloudstack.hosts: host {h.Name}: state {h.State} is not Up, Disconnected or Alert");
            }
        }

        Duplicates(cs.Hosts.Select(h => h.Name), "cloudstack host", problems);
        Duplicates(cs.Vms.Select(v => v.Name), "cloudstack VM", problems);
        var offerings = cs.ServiceOfferings.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var v in cs.Vms)
        {
            if (!vms.Contains(v.Name))
            {
                problems.Add($"cloudstack.vms: VM {v.Name} is not in vms");
            }

            if (v.ServiceOffering is { } offering && !offerings.Contains(offering))
            {
                problems.Add($"cloudstack.vms: VM {v.Name}: service offering {offering} is not in cloudstack.serviceOfferings");
            }

            if (v.Project is not null && v.Account is not null)
            {
                problems.Add($"cloudstack.vms: VM {v.Name}: give a project or an account, not both (CloudStack: \"Account and projectId can't be specified together\")");
            }
        }

        foreach (var g in cs.AffinityGroups)
        {
            if (!s_affinityTypes.Contains(g.Type, StringComparer.Ordinal))
            {
                problems.Add($"cloudstack.affinityGroups: group {g.Name}: type {g.Type} is not one of {string.Join(", ", s_affinityTypes)}");
            }

            foreach (var vm in g.Vms.Where(vm => !vms.Contains(vm)))
            {
                problems.Add($"cloudstack.affinityGroups: group {g.Name}: VM {vm} is not in vms");
            }
        }
    }

    /// <summary>The guidance names of ocaml/xapi/updateinfo.ml Guidance.of_string (what updateinfo.xml may say).</summary>
    private static readonly string[] s_updateGuidances = ["RebootHost", "RestartToolstack", "EvacuateHost", "RestartDeviceModel", "RestartVM"];

    /// <summary>"name-version-release.arch", as yum names a package (GET /updates shows it as ocaml/xapi/rpm.ml Pkg.to_fullname, plus ".rpm").</summary>
    private static readonly System.Text.RegularExpressions.Regex s_rpmFullName = new(@"^[^\s]+-[^-\s]+-[^-\s]+\.[A-Za-z0-9_]+$");

    /// <summary>pool.updates and hosts[].updates: one line per bad entry.</summary>
    private static void ValidateUpdates(ScenarioFile s, Dictionary<string, HostSpec> hosts, XapiProfile? profile, List<string> problems)
    {
        var spec = s.Pool.Updates;
        var ids = new HashSet<string>(StringComparer.Ordinal);
        if (spec is not null)
        {
            if (spec.ApplySeconds < 0 || double.IsNaN(spec.ApplySeconds))
            {
                problems.Add($"pool.updates.applySeconds must be zero or more, not {spec.ApplySeconds}");
            }

            if (spec.Hash is { Length: 0 })
            {
                problems.Add("pool.updates.hash must not be empty (leave it out for the default)");
            }

            for (var i = 0; i < spec.List.Count; i++)
            {
                var u = spec.List[i];
                var at = $"pool.updates.list[{i}]" + (u.Id.Length > 0 ? $" ({u.Id})" : "");
                if (u.Id.Length == 0)
                {
                    problems.Add($"{at}: id is required");
                }
                else if (!ids.Add(u.Id))
                {
                    problems.Add($"{at}: two updates have the id {u.Id}");
                }

                foreach (var rpm in u.Rpms.Where(r => !s_rpmFullName.IsMatch(r)))
                {
                    problems.Add($"{at}: rpm '{rpm}' is not name-version-release.arch");
                }

                foreach (var (kind, names) in new[] { ("mandatory", u.Guidance.Mandatory), ("recommended", u.Guidance.Recommended), ("full", u.Guidance.Full), ("livepatch", u.Guidance.Livepatch) })
                {
                    foreach (var name in names.Where(n => !s_updateGuidances.Contains(n)))
                    {
                        problems.Add($"{at}: guidance.{kind}: {name} is not a guidance of updateinfo ({string.Join(", ", s_updateGuidances)})");
                    }
                }

                for (var j = 0; j < u.Livepatches.Count; j++)
                {
                    var lp = u.Livepatches[j];
                    if (lp.Component is not ("kernel" or "xen"))
                    {
                        problems.Add($"{at}: livepatches[{j}]: component '{lp.Component}' is not kernel or xen");
                    }

                    if (new[] { lp.BaseBuildId, lp.BaseVersion, lp.BaseRelease, lp.ToVersion, lp.ToRelease }.Any(x => x.Length == 0))
                    {
                        problems.Add($"{at}: livepatches[{j}]: baseBuildId, baseVersion, baseRelease, toVersion and toRelease are all required");
                    }
                }
            }
        }

        foreach (var h in s.Hosts)
        {
            foreach (var id in h.Updates.Where(id => !ids.Contains(id)))
            {
                problems.Add($"host {h.Name}: update {id} is not in pool.updates.list");
            }

            foreach (var d in h.Updates.GroupBy(x => x).Where(g => g.Count() > 1))
            {
                problems.Add($"host {h.Name}: update {d.Key} is listed twice");
            }

            if (h.Updates.Count > 0 && profile is { IsXcpNg: false, HasApplyUpdates: false })
            {
                problems.Add($"host {h.Name}: updates: host.apply_updates exists from xapi 1.301.0; this pool runs {profile}");
            }
        }
    }

    private static void ValidateUpdateFault(FaultSpec f, string at, Dictionary<string, HostSpec> hosts, XapiProfile? profile, List<string> problems)
    {
        if (f.Host is null || !hosts.ContainsKey(f.Host))
        {
            problems.Add($"{at}: host {f.Host ?? "(missing)"} is not in hosts");
        }

        if (f.Type == "updaterBusy" && profile is { IsXcpNg: false })
        {
            problems.Add($"{at}: the updater.py plugin is XCP-ng's; this pool runs {profile}");
        }

        if (f.Type == "livepatchFails" && profile is { IsXcpNg: true })
        {
            problems.Add($"{at}: livepatches come with host.apply_updates (XenServer); this pool runs {profile}");
        }

        if (f.Type == "updaterBusy" && f.Times < 1)
        {
            problems.Add($"{at}: times must be at least 1");
        }
    }

    /// <summary>The update_guidances a host's lists can hold (idl/datamodel_common.ml; restart_device_model and restart_vm are VMs').</summary>
    private static readonly string[] s_hostGuidances =
    [
        "reboot_host", "reboot_host_on_livepatch_failure", "reboot_host_on_kernel_livepatch_failure", "reboot_host_on_xen_livepatch_failure", "restart_toolstack",
    ];

    private static void ValidateGuidances(HostSpec h, XapiProfile profile, List<string> problems)
    {
        var at = $"host {h.Name}";
        if (h.Guidances is { } g)
        {
            foreach (var (list, names) in new[] { ("mandatory", g.Mandatory), ("recommended", g.Recommended), ("full", g.Full) })
            {
                foreach (var name in names.Where(n => !s_hostGuidances.Contains(n)))
                {
                    problems.Add($"{at}: guidances.{list}: {name} is not a host guidance ({string.Join(", ", s_hostGuidances)})");
                }

                // reboot_host_on_kernel/xen_livepatch_failure: commit ead6edc1, v24.10.0 (idl/datamodel_common.ml update_guidances).
                foreach (var name in names.Where(n => n is "reboot_host_on_kernel_livepatch_failure" or "reboot_host_on_xen_livepatch_failure" && !profile.HasGuidanceLists))
                {
                    problems.Add($"{at}: guidances.{list}: {name} exists from xapi 24.10.0; this pool runs {profile}");
                }
            }

            if (g.Mandatory.Count > 0 && !profile.HasPendingGuidances)
            {
                problems.Add($"{at}: guidances.mandatory: host.pending_guidances exists from xapi 1.303.0; this pool runs {profile}");
            }

            if ((g.Recommended.Count > 0 || g.Full.Count > 0) && !profile.HasGuidanceLists)
            {
                problems.Add($"{at}: guidances.recommended and .full exist from xapi 24.10.0; this pool runs {profile}");
            }
        }

        if (h.Enabled == true && profile.GuidanceKeepsHostDisabled && MandatoryGuidances(h, profile).Count > 0)
        {
            problems.Add($"{at}: enabled with mandatory guidance pending cannot happen from xapi 24.10.0 (host.apply_updates disables the host and host.enable refuses it until the guidance is applied); leave enabled out or false");
        }
    }

    /// <summary>The host's mandatory guidances as the lab builds it: given, or what pendingReboot means on XenServer from 1.303.0.</summary>
    internal static IReadOnlyList<string> MandatoryGuidances(HostSpec h, XapiProfile profile) =>
        h.Guidances is { } g ? g.Mandatory
        : h.PendingReboot && !profile.IsXcpNg && profile.HasPendingGuidances ? ["reboot_host"]
        : [];

    private static void Duplicates(IEnumerable<string> names, string what, List<string> problems)
    {
        foreach (var d in names.GroupBy(n => n).Where(g => g.Count() > 1))
        {
            problems.Add($"two {what}s are named {d.Key}");
        }
    }
}

/// <summary>How the lab accounts VM memory: static max plus an overhead like XAPI's (about 1/128).</summary>
public static class LabMemory
{
    public const long MiB = 1024 * 1024;

    public static long OverheadMiB(long memoryMiB) => (memoryMiB + 127) / 128;
}
