using RollingReboot.Lab.Scenario;

namespace RollingReboot.Lab.Tests;

/// <summary>What a scenario file may say, what it means when it says nothing, and how a bad one is refused.</summary>
public sealed class ScenarioLoaderTests
{
    private static ScenarioException Refused(string json) => Assert.Throws<ScenarioException>(() => ScenarioLoader.Parse(json, "test.json"));

    [Fact]
    public void Parse_VmOnUnknownHost_NamesVmAndHost()
    {
        var e = Refused("""{ "hosts": [ { "name": "xen1" } ], "vms": [ { "name": "web", "host": "xen9" } ] }""");
        Assert.StartsWith("test.json: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("VM web: host xen9 is not in hosts", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_TwoMasters_NamesBoth()
    {
        var e = Refused("""{ "hosts": [ { "name": "xen1", "master": true }, { "name": "xen2" }, { "name": "xen3", "master": true } ] }""");
        Assert.Contains("more than one host is master: xen1, xen3", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_VmLargerThanItsHost_SaysHowMuchTheHostHolds()
    {
        var e = Refused("""{ "hosts": [ { "name": "xen1", "memoryMiB": 16384, "dom0MemoryMiB": 4096 } ], "vms": [ { "name": "big", "host": "xen1", "memoryMiB": 20000 } ] }""");
        Assert.Contains("VM big: 20000 MiB is larger than host xen1 can hold (12288 MiB beside dom0)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_HostOvercommittedByItsRunningVms_CountsOverheads()
    {
        // 2 x (6000 + 47) MiB = 12094 MiB fits in 12288; a third does not. Halted VMs do not count.
        const string Fits = """
            { "hosts": [ { "name": "xen1", "memoryMiB": 16384, "dom0MemoryMiB": 4096 } ],
              "vms": [ { "name": "a", "host": "xen1", "memoryMiB": 6000 }, { "name": "b", "host": "xen1", "memoryMiB": 6000 },
                       { "name": "c", "host": "xen1", "memoryMiB": 6000, "powerState": "Halted" } ] }
            """;
        Assert.Equal(3, ScenarioLoader.Parse(Fits).Vms.Count);

        var e = Refused(Fits.Replace("\"Halted\"", "\"Running\"", StringComparison.Ordinal));
        Assert.Contains("host xen1: its running VMs need 18141 MiB with overheads, more than its 12288 MiB beside dom0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_VmOnUnknownSr_NamesTheSr()
    {
        var e = Refused("""{ "hosts": [ { "name": "xen1" } ], "srs": [ { "name": "nfs" } ], "vms": [ { "name": "web", "host": "xen1", "srs": ["nfs", "iscsi-9"] } ] }""");
        Assert.Contains("VM web: SR iscsi-9 is not in srs", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_AsyncJobs_ReadAndChecked()
    {
        const string Ok = """
            { "hosts": [ { "name": "xen1" } ], "vms": [ { "name": "i-2-1-VM", "host": "xen1", "memoryMiB": 1024 } ],
              "cloudstack": { "clusterName": "C", "asyncJobs": [
                { "cmd": "org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd", "vm": "i-2-1-VM" },
                { "cmd": "org.apache.cloudstack.api.command.admin.host.PrepareForMaintenanceCmd", "host": "xen1", "durationSeconds": 30, "account": "ops" } ] } }
            """;
        var jobs = ScenarioLoader.Parse(Ok).CloudStack!.AsyncJobs;
        Assert.Equal([("i-2-1-VM", null, null, "admin"), (null, "xen1", (double?)30, "ops")], jobs.Select(j => (j.Vm, j.Host, j.DurationSeconds, j.Account)));

        var e = Refused("""
            { "hosts": [ { "name": "xen1" } ], "cloudstack": { "asyncJobs": [
              { "cmd": "A", "host": "xen9" }, { "cmd": "B", "host": "xen1", "cluster": true }, { "host": "xen1", "durationSeconds": 0 } ] } }
            """);
        Assert.Contains("cloudstack.asyncJobs[0]: host xen9 is not in hosts", e.Message, StringComparison.Ordinal);
        Assert.Contains("cloudstack.asyncJobs[1]: give exactly one of host, vm or \"cluster\": true", e.Message, StringComparison.Ordinal);
        Assert.Contains("cloudstack.asyncJobs[2]: cmd is required", e.Message, StringComparison.Ordinal);
        Assert.Contains("cloudstack.asyncJobs[2]: durationSeconds must be positive", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_CloudStackExtensions_ReadAndChecked()
    {
        const string Ok = """
            { "hosts": [ { "name": "xen1" }, { "name": "xen2" } ], "vms": [ { "name": "i-2-1-VM", "host": "xen1", "memoryMiB": 1024 } ],
              "cloudstack": { "clusterName": "C", "managedState": "PrepareUnmanagedError", "scanIntervalSeconds": 30, "connectSeconds": 4,
                "defaultPageSize": 100, "enforcePostRequestsAndTimestamps": true, "deniedCommands": ["listDedicatedHosts"],
                "hosts": [ { "name": "xen2", "resourceState": "Maintenance", "hostTags": ["ssd"], "dedicatedTo": "ops", "state": "Disconnected" } ],
                "serviceOfferings": [ { "name": "fast", "hostTags": "ssd" } ],
                "affinityGroups": [ { "name": "db", "type": "host affinity", "vms": ["i-2-1-VM"] } ],
                "vms": [ { "name": "i-2-1-VM", "project": "web", "serviceOffering": "fast" } ],
                "asyncJobs": [ { "cmd": "X", "vm": "i-2-1-VM", "project": "web" } ] },
              "faults": [ { "type": "cloudstackStaleVm", "vm": "i-2-1-VM" } ] }
            """;
        var cs = ScenarioLoader.Parse(Ok).CloudStack!;
        Assert.Equal(("PrepareUnmanagedError", 30.0, 100, true), (cs.ManagedState, cs.ScanIntervalSeconds, cs.DefaultPageSize, cs.EnforcePostRequestsAndTimestamps));
        Assert.Equal(("Maintenance", "ops", "Disconnected"), (cs.Hosts[0].ResourceState, cs.Hosts[0].DedicatedTo, cs.Hosts[0].State));
        Assert.Equal(("web", "fast"), (cs.Vms[0].Project, cs.Vms[0].ServiceOffering));
        Assert.Equal("web", cs.AsyncJobs[0].Project);

        var e = Refused("""
            { "hosts": [ { "name": "xen1" } ], "vms": [ { "name": "a", "host": "xen1" } ],
              "cloudstack": { "managedState": "Sideways", "defaultPageSize": 0,
                "hosts": [ { "name": "xen9", "resourceState": "Resting", "state": "Connecting" } ],
                "affinityGroups": [ { "name": "g", "type": "host magnetism", "vms": ["ghost"] } ],
                "vms": [ { "name": "a", "project": "p", "account": "x", "serviceOffering": "none" } ] },
              "faults": [ { "type": "cloudstackStaleVm", "vm": "ghost" } ] }
            """);
        foreach (var expected in new[]
        {
            "cloudstack.managedState Sideways is not one of Managed, Unmanaged, PrepareUnmanaged, PrepareUnmanagedError",
            "cloudstack.defaultPageSize must be positive, or -1",
            "cloudstack.hosts: host xen9 is not in hosts",
            "host xen9: resourceState Resting is not one of Enabled, Disabled, Maintenance",
            "host xen9: state Connecting is not Up, Disconnected or Alert",
            "group g: type host magnetism is not one of",
            "group g: VM ghost is not in vms",
            "VM a: service offering none is not in cloudstack.serviceOfferings",
            "VM a: give a project or an account, not both",
            "faults[0] (cloudstackStaleVm): vm ghost is not in vms",
        })
        {
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Parse_UnknownFaultType_ListsTheKnownOnes()
    {
        var e = Refused("""{ "hosts": [ { "name": "xen1" } ], "faults": [ { "type": "meteorStrike" } ] }""");
        Assert.Contains("faults[0] (meteorStrike): unknown fault type; known: migrationFails, hostDoesNotReturn, slowReboot", e.Message, StringComparison.Ordinal);
        Assert.Contains("sessionInvalid, connectionReset", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "type": "migrationFails", "vm": "ghost", "times": 1 }""", "faults[0] (migrationFails): vm ghost is not in vms")]
    [InlineData("""{ "type": "migrationFails", "times": 1 }""", "faults[0] (migrationFails): vm (missing) is not in vms")]
    [InlineData("""{ "type": "hostDoesNotReturn", "host": "xen7" }""", "faults[0] (hostDoesNotReturn): host xen7 is not in hosts")]
    [InlineData("""{ "type": "slowReboot", "host": "xen7", "rebootSeconds": 900 }""", "faults[0] (slowReboot): host xen7 is not in hosts")]
    [InlineData("""{ "type": "pendingGuidance", "host": "xen7", "guidance": "reboot_host" }""", "faults[0] (pendingGuidance): host xen7 is not in hosts")]
    [InlineData("""{ "type": "vmStarts", "vm": { "name": "new", "host": "xen7" }, "atSeconds": 5 }""", "faults[0] (vmStarts): host xen7 is not in hosts")]
    [InlineData("""{ "type": "vmStarts", "vm": { "name": "web" }, "atSeconds": 5 }""", "faults[0] (vmStarts): VM web already exists")]
    [InlineData("""{ "type": "slowReboot", "host": "xen1" }""", "faults[0] (slowReboot): rebootSeconds is required")]
    [InlineData("""{ "type": "xapiOutage", "atSeconds": 5 }""", "faults[0] (xapiOutage): atSeconds and durationSeconds are required")]
    [InlineData("""{ "type": "cloudstackError", "command": "listHosts", "errorCode": 530 }""", "faults[0] (cloudstackError): the scenario has no cloudstack section")]
    [InlineData("""{ "type": "memberEmergency", "host": "xen7", "atSeconds": 0, "durationSeconds": 60 }""", "faults[0] (memberEmergency): host xen7 is not in hosts")]
    [InlineData("""{ "type": "memberEmergency", "host": "xen1", "atSeconds": 0, "durationSeconds": 60 }""", "faults[0] (memberEmergency): host xen1 is the master; only a member goes into emergency mode")]
    [InlineData("""{ "type": "memberEmergency", "host": "xen2", "atSeconds": 0 }""", "faults[0] (memberEmergency): atSeconds and durationSeconds are required")]
    public void Parse_FaultNamingWhatIsNotThere_IsRefusedWithItsPlace(string fault, string expected)
    {
        var e = Refused($$"""{ "hosts": [ { "name": "xen1" }, { "name": "xen2" } ], "vms": [ { "name": "web", "host": "xen1" } ], "faults": [ {{fault}} ] }""");
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "hosts": [ { "name": "xen1" } """)]
    [InlineData("""{ "hosts": [ { "name": "xen1", } ] } trailing""")]
    [InlineData("""not json at all""")]
    public void Parse_MalformedJson_SaysNotValidJson(string json)
    {
        var e = Refused(json);
        Assert.StartsWith("test.json: not valid JSON (", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NotAnObject_SaysSo() =>
        Assert.Equal("test.json: the scenario must be a JSON object", Refused("""[ { "name": "xen1" } ]""").Message);

    [Theory]
    [InlineData("""{ "hosts": [ { "name": "xen1", "memoryGiB": 256 } ] }""", "memoryGiB")]
    [InlineData("""{ "hots": [ { "name": "xen1" } ] }""", "hots")]
    [InlineData("""{ "hosts": [ { "name": "xen1" } ], "pool": { "ha": { "enabled": true, "timeout": 30 } } }""", "timeout")]
    [InlineData("""{ "hosts": [ { "name": "xen1" } ], "faults": [ { "type": "hostDoesNotReturn", "host": "xen1", "after": 3 } ] }""", "after")]
    public void Parse_UnknownProperty_NamesIt(string json, string property)
    {
        var e = Refused(json);
        Assert.Contains($"'{property}'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_OmittedFields_TakeTheContractDefaults()
    {
        var s = ScenarioLoader.Parse("""{ "hosts": [ { "name": "xen1" }, { "name": "xen2" } ], "vms": [ { "name": "web", "host": "xen2" } ] }""");

        Assert.Equal("CLUSTER-1", s.Pool.Name);
        Assert.Equal("24.19.0", s.Pool.XapiVersion);
        Assert.Null(s.Pool.Ha);
        Assert.Null(s.CloudStack);
        Assert.Empty(s.Faults);
        Assert.Equal((120.0, 250.0, 6.0, 0.1), (s.Migration.StreamMBps, s.Migration.HostLinkMBps, s.Migration.SetupSeconds, s.Migration.DirtyRatio));
        var h = s.Hosts[0];
        Assert.Equal((262144L, 4096L, 300.0, true, true), (h.MemoryMiB, h.Dom0MemoryMiB, h.RebootSeconds, h.Enabled, h.PendingReboot));
        Assert.Equal([true, false], s.Hosts.Select(x => x.Master));
        var sr = Assert.Single(s.Srs);
        Assert.Equal(("nfs-primary", true, (string?)null), (sr.Name, sr.Shared, sr.Host));
        var vm = Assert.Single(s.Vms);
        Assert.Equal((8192L, "Running", true, false, false, false), (vm.MemoryMiB, vm.PowerState, vm.PvDrivers, vm.HaProtected, vm.Pci, vm.Vgpu));
        Assert.Equal(["nfs-primary"], vm.Srs!);
        Assert.Null(vm.CdromIso);
        Assert.Null(vm.AffinityGroup);
    }

    [Fact]
    public void Parse_EmptyHaAndCloudStackSections_TakeTheContractDefaults()
    {
        var s = ScenarioLoader.Parse("""{ "pool": { "ha": { "enabled": true } }, "cloudstack": {}, "hosts": [ { "name": "xen1", "master": true } ] }""");

        var ha = s.Pool.Ha!;
        Assert.Equal((true, 180, 1, true, "nfs-primary"), (ha.Enabled, ha.TimeoutSeconds, ha.HostFailuresToTolerate, ha.AllowOvercommit, ha.HeartbeatSr));
        var cs = s.CloudStack!;
        Assert.Equal(("CLUSTER-1", "ZONE-1", "POD-1", "Managed"), (cs.ClusterName, cs.Zone, cs.Pod, cs.ManagedState));
    }

    private const string Generated = """
        { "hosts": [ { "name": "xen1" }, { "name": "xen2" }, { "name": "xen3" } ],
          "srs": [ { "name": "xen1-local", "shared": false, "host": "xen1" }, { "name": "nfs" }, { "name": "nfs2" } ],
          "generate": [ { "hosts": ["xen2", "xen3"], "perHost": 20, "namePrefix": "i-2-", "memoryMiB": [2048, 4096, 8192, 16384], "seed": SEED } ] }
        """;

    [Fact]
    public void Parse_Generate_SameSeedGivesTheSamePool()
    {
        var first = ScenarioLoader.Parse(Generated.Replace("SEED", "7", StringComparison.Ordinal)).Vms;
        var again = ScenarioLoader.Parse(Generated.Replace("SEED", "7", StringComparison.Ordinal)).Vms;
        var other = ScenarioLoader.Parse(Generated.Replace("SEED", "8", StringComparison.Ordinal)).Vms;

        Assert.Equal(40, first.Count);
        Assert.Equal(first.Select(v => (v.Name, v.Host, v.MemoryMiB)), again.Select(v => (v.Name, v.Host, v.MemoryMiB)));
        Assert.NotEqual(first.Select(v => v.MemoryMiB), other.Select(v => v.MemoryMiB));
        Assert.Equal(Enumerable.Range(1, 40).Select(n => $"i-2-{n}-VM"), first.Select(v => v.Name));
        Assert.Equal(Enumerable.Repeat("xen2", 20).Concat(Enumerable.Repeat("xen3", 20)), first.Select(v => v.Host));
        Assert.All(first, v =>
        {
            Assert.Equal("Running", v.PowerState);
            Assert.Contains(v.MemoryMiB, new long[] { 2048, 4096, 8192, 16384 });
            Assert.Equal(["nfs"], v.Srs!); // the first shared SR
        });
        Assert.True(first.Select(v => v.MemoryMiB).Distinct().Count() > 1, "memory is drawn from the list, not always its first entry");
    }

    [Fact]
    public void Parse_GenerateBesideAVmOfTheSamePrefix_GivesUniqueNames()
    {
        // The contract's own example: an explicit i-2-10-VM and 60 generated i-2-<n>-VM.
        var s = ScenarioLoader.Parse("""
            { "hosts": [ { "name": "xen1" }, { "name": "xen2" }, { "name": "xen3" } ],
              "vms": [ { "name": "i-2-10-VM", "host": "xen1", "memoryMiB": 8192 } ],
              "generate": [ { "hosts": ["xen2", "xen3"], "perHost": 30, "namePrefix": "i-2-", "memoryMiB": [2048, 4096], "seed": 7 } ] }
            """);

        Assert.Equal(61, s.Vms.Count);
        Assert.Equal(61, s.Vms.Select(v => v.Name).Distinct().Count());
        Assert.Equal("xen1", s.Vms.Single(v => v.Name == "i-2-10-VM").Host);
        Assert.All(s.Vms.Skip(1), v => Assert.Matches("^i-2-[0-9]+-VM$", v.Name));
    }

    [Theory]
    [InlineData("six-hosts-n-plus-1.json", 6, 135, true, true)]
    [InlineData("three-hosts-with-blockers.json", 3, 5, false, false)]
    public void LoadFile_SharedScenarios_Load(string file, int hosts, int vms, bool ha, bool cloudStack)
    {
        var s = ScenarioLoader.LoadFile(Path.Combine(ScenariosDirectory(), file));

        Assert.Equal(hosts, s.Hosts.Count);
        Assert.Equal(vms, s.Vms.Count);
        Assert.Equal(ha, s.Pool.Ha?.Enabled ?? false);
        Assert.Equal(cloudStack, s.CloudStack is not null);
        Assert.Single(s.Hosts, h => h.Master);
    }

    [Fact]
    public void LoadFile_EveryScenarioOfTestsScenarios_Loads()
    {
        var files = Directory.GetFiles(ScenariosDirectory(), "*.json");
        Assert.Contains(files, f => f.EndsWith("xs8-rolling-update.json", StringComparison.Ordinal));
        Assert.Contains(files, f => f.EndsWith("xcp-ng-83-rolling-update.json", StringComparison.Ordinal));
        Assert.All(files, f => Assert.NotEmpty(ScenarioLoader.LoadFile(f).Hosts));
    }

    [Fact]
    public void LoadFile_RollingUpdateScenarios_HaveTheirUpdatesPerHost()
    {
        var xs8 = ScenarioLoader.LoadFile(Path.Combine(ScenariosDirectory(), "xs8-rolling-update.json"));
        Assert.Equal(["xs1", "xs2", "xs3", "xs4", "xs5"], xs8.Hosts.Select(h => h.Name));
        Assert.Equal([2, 2, 1, 0, 1], xs8.Hosts.Select(h => h.Updates.Count));
        Assert.True(xs8.Hosts.All(h => h.Enabled == true));
        var xcp = ScenarioLoader.LoadFile(Path.Combine(ScenariosDirectory(), "xcp-ng-83-rolling-update.json"));
        Assert.Equal([3, 2, 1, 0], xcp.Hosts.Select(h => h.Updates.Count));
    }

    [Theory]
    [InlineData("""{ "id": "U1", "guidance": { "mandatory": ["RebootTheWorld"] } }""", "", "pool.updates.list[0] (U1): guidance.mandatory: RebootTheWorld is not a guidance of updateinfo (RebootHost, RestartToolstack, EvacuateHost, RestartDeviceModel, RestartVM)")]
    [InlineData("""{ "id": "U1", "rpms": ["kernel"] }""", "", "pool.updates.list[0] (U1): rpm 'kernel' is not name-version-release.arch")]
    [InlineData("""{ "rpms": [] }""", "", "pool.updates.list[0]: id is required")]
    [InlineData("""{ "id": "U1", "livepatches": [ { "component": "qemu", "baseBuildId": "b", "baseVersion": "1", "baseRelease": "1", "toVersion": "1", "toRelease": "2" } ] }""", "", "pool.updates.list[0] (U1): livepatches[0]: component 'qemu' is not kernel or xen")]
    [InlineData("""{ "id": "U1", "livepatches": [ { "component": "xen" } ] }""", "", "pool.updates.list[0] (U1): livepatches[0]: baseBuildId, baseVersion, baseRelease, toVersion and toRelease are all required")]
    [InlineData("""{ "id": "U1" }""", "\"U2\"", "host a: update U2 is not in pool.updates.list")]
    [InlineData("""{ "id": "U1" }, { "id": "U1" }""", "", "pool.updates.list[1] (U1): two updates have the id U1")]
    public void Parse_BadUpdates_OneClearLineEach(string list, string hostUpdates, string expected)
    {
        var e = Refused($$"""
            { "pool": { "xapiVersion": "xenserver-8", "updates": { "list": [ {{list}} ] } },
              "hosts": [ { "name": "a", "pendingReboot": false, "updates": [ {{hostUpdates}} ] } ] }
            """);
        Assert.Equal("test.json: " + expected, e.Message);
    }

    [Theory]
    [InlineData("xcp-ng-8.3", """{ "type": "updateFails", "host": "zz" }""", "faults[0] (updateFails): host zz is not in hosts")]
    [InlineData("xenserver-8", """{ "type": "updaterBusy", "host": "a", "times": 2 }""", "faults[0] (updaterBusy): the updater.py plugin is XCP-ng's; this pool runs xenserver-8 (XenServer 8.4.0, xapi 26.1.4)")]
    [InlineData("xcp-ng-8.3", """{ "type": "livepatchFails", "host": "a" }""", "faults[0] (livepatchFails): livepatches come with host.apply_updates (XenServer); this pool runs xcp-ng-8.3 (XCP-ng 8.3.0, xapi 24.19.2)")]
    [InlineData("xcp-ng-8.3", """{ "type": "updaterBusy", "host": "a", "times": 0 }""", "faults[0] (updaterBusy): times must be at least 1")]
    public void Parse_BadUpdateFaults_OneClearLineEach(string profile, string fault, string expected)
    {
        var e = Refused($$"""{ "pool": { "xapiVersion": "{{profile}}" }, "hosts": [ { "name": "a", "pendingReboot": false } ], "faults": [ {{fault}} ] }""");
        Assert.Equal("test.json: " + expected, e.Message);
    }

    [Fact]
    public void LoadFile_Missing_SaysItCannotRead()
    {
        var e = Assert.Throws<ScenarioException>(() => ScenarioLoader.LoadFile("/nonexistent/scenario.json"));
        Assert.StartsWith("cannot read scenario file /nonexistent/scenario.json", e.Message, StringComparison.Ordinal);
    }

    /// <summary>tests/scenarios in the checkout this test runs from.</summary>
    internal static string ScenariosDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "scenarios");
            if (File.Exists(Path.Combine(candidate, "six-hosts-n-plus-1.json")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("tests/scenarios not found above " + AppContext.BaseDirectory);
    }
}
