using System.Diagnostics;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace RollingReboot.Lab.Tests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ScaleCollection
{
    public const string Name = "Scale (runs alone)";
}

/// <summary>A pool of the size the CLI is meant for: the lab must start quickly and keep answering under load.</summary>
[Collection(ScaleCollection.Name)]
public sealed class ScaleTests(ITestOutputHelper output)
{
    private static string SixtyFourHosts()
    {
        var hosts = string.Join(", ", Enumerable.Range(1, 64).Select(i => $$"""{ "name": "xen{{i}}" }"""));
        string Names(int from, int count) => string.Join(", ", Enumerable.Range(from, count).Select(i => $"\"xen{i}\""));
        // 56 x 47 + 8 x 46 = 3,000 VMs.
        return $$"""
            { "name": "sixty-four", "hosts": [ {{hosts}} ],
              "generate": [ { "hosts": [ {{Names(1, 56)}} ], "perHost": 47, "memoryMiB": [1024, 2048, 4096], "seed": 3 },
                            { "hosts": [ {{Names(57, 8)}} ], "perHost": 46, "memoryMiB": [1024, 2048, 4096], "seed": 4 } ] }
            """;
    }

    [Fact]
    public async Task SixtyFourHosts3000Vms_Starts_AndServesReadsAndAMigrationWhileLongPolled()
    {
        var json = SixtyFourHosts();
        var clock = Stopwatch.StartNew();
        await using var lab = await Labs.StartAsync(json);
        var started = clock.Elapsed;
        output.WriteLine($"64 hosts, 3,000 VMs: lab started in {started.TotalSeconds:0.00} s (sshd per host: {lab.SshAvailable})");
        // How fast it starts is the benchmark's to measure (wall time on a shared 2-core machine is no test verdict).

        await using var watcher = Labs.Client(lab);
        await using var reader = Labs.Client(lab, Labs.Address(lab, "xen33"));
        var token = (await watcher.CallAsync("event.from", [new[] { "pool" }, "", 0.0]))!["token"]!.GetValue<string>();
        var poll = watcher.CallAsync("event.from", [new[] { "vm" }, token, 3600.0], extraTimeout: TimeSpan.FromSeconds(60));

        clock.Restart();
        var vms = (JsonObject)(await reader.CallAsync("VM.get_all_records", []).WaitAsync(TimeSpan.FromSeconds(20), TimeProvider.System))!;
        output.WriteLine($"VM.get_all_records of {vms.Count} VMs: {clock.Elapsed.TotalSeconds:0.00} s");
        Assert.Equal(3000 + 64, vms.Count);
        Assert.False(poll.IsCompleted, "nothing changed yet");

        var vm = vms.Single(kv => kv.Value!["name_label"]!.GetValue<string>() == "i-2-1-VM");
        var target = (await reader.CallAsync("host.get_by_name_label", ["xen64"]))!.AsArray()[0]!.GetValue<string>();
        clock.Restart();
        await reader.RunTaskAsync("VM.pool_migrate", [vm.Key, target, new Dictionary<string, string> { ["live"] = "true" }])
            .WaitAsync(TimeSpan.FromSeconds(20), TimeProvider.System);
        output.WriteLine($"one migration: {clock.Elapsed.TotalSeconds:0.00} s");

        var batch = (await poll.WaitAsync(TimeSpan.FromSeconds(20), TimeProvider.System))!;
        Assert.Contains(batch["events"]!.AsArray(), e => e!["ref"]!.GetValue<string>() == vm.Key);
        var audit = lab.AuditJson();
        Assert.Equal("xen64", Audit.Vm(audit, "i-2-1-VM")["residentOn"]!.GetValue<string>());
        Assert.Equal(3000, audit["vms"]!.AsArray().Count);
        Assert.Empty(Audit.Violations(audit));
    }
}
