namespace RollingReboot.Lab.Tests;

/// <summary>xen-api scripts/xapi-autostart-vms, as the lab models it.</summary>
public sealed class AutostartTests
{
    private static string Scenario(string poolAutoPowerOn) => $$"""
        { "pool": { "toolstackStartSeconds": 2, "otherConfig": { "auto_poweron": "{{poolAutoPowerOn}}" } },
          "hosts": [ { "name": "a1", "memoryMiB": 65536, "rebootSeconds": 20 }, { "name": "a2", "memoryMiB": 65536, "rebootSeconds": 20 } ],
          "vms": [ { "name": "parked", "host": "a2", "memoryMiB": 4096, "powerState": "Halted", "otherConfig": { "auto_poweron": "true" } },
                   { "name": "off", "host": "a2", "memoryMiB": 4096, "powerState": "Halted" } ] }
        """;

    [Theory]
    [InlineData("true", true)]
    [InlineData("false", false)]
    public async Task HostBoot_PoolAutoPowerOn_StartsTheHaltedVmsMarkedAutoPowerOn(string pool, bool started)
    {
        await using var lab = await Labs.StartAsync(Scenario(pool));
        await using var client = Labs.Client(lab);
        var a2 = (await client.CallAsync("host.get_by_name_label", ["a2"]))!.AsArray()[0]!.GetValue<string>();
        await client.CallAsync("host.disable", [a2]);
        await client.CallAsync("host.reboot", [a2]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "a2");

        var audit = lab.AuditJson();
        Assert.Equal(started ? ["parked"] : [], Audit.Events(audit, "vm.autostart").Select(e => e["vm"]!.GetValue<string>()));
        Assert.Equal(started ? "Running" : "Halted", Audit.Vm(audit, "parked")["powerState"]!.GetValue<string>());
        Assert.Equal("Halted", Audit.Vm(audit, "off")["powerState"]!.GetValue<string>());
    }
}
