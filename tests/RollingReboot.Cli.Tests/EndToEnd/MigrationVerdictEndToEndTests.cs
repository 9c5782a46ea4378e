using RollingReboot.Lab.Scenario;

namespace RollingReboot.Cli.Tests.EndToEnd;

/// <summary>
/// Issue 15 §3 (findings §5.8): the plan takes XAPI's verdict on live migration (VM.allowed_operations,
/// xapi_vm_lifecycle.ml check_operation_error) instead of guessing from a VM's hardware.
/// </summary>
public sealed class MigrationVerdictEndToEndTests
{
    [Fact]
    public async Task Exec_SuspendableVgpuAndPvGuests_AreMigrated_EveryHostRebootedOnce()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("gpu-and-pv-guests.json"));
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-GPU", "--exec");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");

        var audit = lab.Audit();
        Assert.Empty(audit["violations"]!.AsArray());
        Assert.All(audit["hosts"]!.AsArray(), h => Assert.Equal(1, h!["bootCount"]!.GetValue<int>()));
        foreach (var name in new[] { "i-2-101-VM", "i-2-102-VM", "i-2-103-VM", "i-2-104-VM" })
        {
            var vm = audit["vms"]!.AsArray().First(v => v!["name"]!.ToString() == name)!;
            Assert.True(vm["migrations"]!.GetValue<int>() >= 1, $"{name} was never migrated");
            Assert.Equal("Running", vm["powerState"]!.ToString());
        }

        Assert.True(audit["pool"]!["haEnabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Plan_AVgpuXapiRefuses_IsABlockerWithXapisCode_BehindHa()
    {
        var scenario = ScenarioLoader.LoadFile(LabHarness.SharedScenario("gpu-and-pv-guests.json"));
        scenario.Vms.Add(new VmSpec { Name = "i-2-200-VM", Host = "gp02", MemoryMiB = 4096, Srs = ["nfs-primary"], Vgpu = true });
        scenario.Vms.Add(new VmSpec { Name = "i-2-201-VM", Host = "gp03", MemoryMiB = 4096, Srs = ["nfs-primary"], NestedVirt = true });
        await using var lab = await LabHarness.StartAsync(scenario, timeScale: 400);
        var (code, stdout, stderr) = await lab.RunCliAsync("--clustername", "CLUSTER-GPU");
        Assert.True(code == 3, $"exit {code}\n{stdout}\n{stderr}");
        // HA is on, so host.get_vms_which_prevent_evacuation says only HOST_EVACUATE_VM_NOT_HA_PROTECTED for these two.
        Assert.Contains("VM_HAS_VGPU", stdout, StringComparison.Ordinal);
        Assert.Contains("i-2-200-VM", stdout, StringComparison.Ordinal);
        Assert.Contains("VM_IS_IMMOBILE", stdout, StringComparison.Ordinal);
        Assert.Contains("i-2-201-VM", stdout, StringComparison.Ordinal);
        foreach (var name in new[] { "i-2-101-VM", "i-2-102-VM", "i-2-103-VM", "i-2-104-VM" })
        {
            Assert.DoesNotContain(stdout.Split('\n'), l => l.Contains(name, StringComparison.Ordinal) && l.Contains("[VM_", StringComparison.Ordinal)
                && !l.Contains("[VM_HA_PROTECTED]", StringComparison.Ordinal));
        }

        Assert.Empty(lab.Audit()["violations"]!.AsArray());
    }
}
