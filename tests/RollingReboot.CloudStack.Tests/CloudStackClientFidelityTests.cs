using System.Net;
using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Ports;

namespace RollingReboot.CloudStack.Tests;

/// <summary>What the client sends and how it reads CloudStack's answers, against scripted answers shaped like the real ones.</summary>
public class CloudStackClientFidelityTests
{
    private const string Secret = "s3cr3t-VDaACYb0LV9eNjTetIOElcVQkvJck";
    private const string ClusterJson =
        """{"id":"c1","name":"CLUSTER-1","zoneid":"z1","zonename":"ZONE-1","podname":"POD-1","hypervisortype":"XenServer","allocationstate":"Enabled","managedstate":"Managed"}""";

    private static CloudStackClient Client(HttpMessageHandler handler, TimeProvider? clock = null, TimeProvider? wallClock = null, int? pageSize = null, bool post = false) =>
        new(new CloudStackClientOptions
        {
            Endpoint = new Uri("http://cloudstack.test:8080/client/api"),
            ApiKey = "apikey-123456789",
            SecretKey = Secret,
            RetryCount = 2,
            RetryDelay = TimeSpan.Zero,
            PollInterval = TimeSpan.Zero,
            PageSize = pageSize,
            UsePost = post,
        }, handler, clock ?? new FakeTimeProvider(), wallClock);

    [Fact]
    public async Task EveryRequest_IsSignatureVersion3_WithExpiresFromTheWallClock_NotTheRunsClock()
    {
        // The run's clock is simulated (years away); CloudStack compares expires with its own wall clock.
        var runClock = new FakeTimeProvider(new DateTimeOffset(2040, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var wall = new FakeTimeProvider(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
        var handler = ScriptedHandler.Answer(HttpStatusCode.OK, """{"listhostsresponse":{}}""");
        using var client = Client(handler, runClock, wall);

        await client.ListHostsAsync("c1");

        var parameters = ScriptedHandler.Parameters(handler.Requests.Single());
        Assert.Equal("3", parameters["signatureversion"]);
        Assert.Equal("2026-11-22T12:10:00Z+0000", parameters["expires"]);
        Assert.True(Lab.CloudStack.LabSignatureVerifier.Verify(parameters, Secret));
    }

    [Fact]
    public async Task StateChangingCommands_ArePosted_ReadsAreGets()
    {
        var handler = new ScriptedHandler((request, _) => Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK,
            ScriptedHandler.Command(request) == "updateCluster"
                ? """{"updateclusterresponse":{"cluster":{"id":"c1"}}}"""
                : "{\"listclustersresponse\":{\"count\":1,\"cluster\":[" + ClusterJson.Replace("\"Managed\"", "\"Unmanaged\"", StringComparison.Ordinal) + "]}}")));
        using var client = Client(handler);

        await client.SetManagedStateAsync("c1", managed: false);
        await client.ExecuteAsync("queryAsyncJobResult", new Dictionary<string, string> { ["jobid"] = "j" });

        var requests = handler.Requests.Select(r => (r.Method, Command: ScriptedHandler.Parameters(r)["command"])).ToList();
        Assert.Contains(("POST", "updateCluster"), requests);
        Assert.All(requests.Where(r => r.Command != "updateCluster"), r => Assert.Equal("GET", r.Method));
        var update = handler.Requests.Single(r => r.Method == "POST");
        Assert.Empty(update.Uri.Query.TrimStart('?'));
        Assert.True(Lab.CloudStack.LabSignatureVerifier.Verify(ScriptedHandler.Parameters(update), Secret));
    }

    [Theory]
    [InlineData("listHosts", true)]
    [InlineData("getUser", true)]
    [InlineData("queryAsyncJobResult", true)]
    [InlineData("findHostsForMigration", true)]
    [InlineData("updateCluster", false)]
    [InlineData("prepareHostForMaintenance", false)]
    [InlineData("list", false)]
    public void IsRead_FollowsApiServletsGetRequestCommands(string command, bool read) =>
        Assert.Equal(read, CloudStackClient.IsRead(command));

    [Fact]
    public async Task Unauthorized_CommandNotAvailableForUser_BlamesThePermissionNotTheKeys()
    {
        using var client = Client(ScriptedHandler.Answer(HttpStatusCode.Unauthorized,
            """{"updateclusterresponse":{"uuidList":[],"errorcode":401,"cserrorcode":9999,"errortext":"The given command 'updateCluster' either does not exist, is not available for user."}}"""));

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ExecuteAsync("updateCluster", new Dictionary<string, string> { ["id"] = "c1" }));

        Assert.Equal(401, ex.ErrorCode);
        Assert.Contains("the keys are accepted", ex.Message, StringComparison.Ordinal);
        Assert.Contains("does not allow updateCluster", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("is wrong", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unauthorized_AfterTheKeysWorked_SaysTheRoleOrTheCommand_NotWrongKeys()
    {
        var handler = new ScriptedHandler((request, _) => Task.FromResult(ScriptedHandler.Command(request) == "listClusters"
            ? ScriptedHandler.Response(HttpStatusCode.OK, """{"listclustersresponse":{}}""")
            : ScriptedHandler.Response(HttpStatusCode.Unauthorized, """{"errorresponse":{"uuidList":[],"errorcode":401,"errortext":"unable to verify user credentials and/or request signature"}}""")));
        using var client = Client(handler);
        await client.FindClustersAsync("CLUSTER-1", null);

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ListDedicatedHostsAsync());

        Assert.Contains("with the API keys it accepted for earlier calls", ex.Message, StringComparison.Ordinal);
        Assert.Contains("does not allow listDedicatedHosts or this management server does not know it", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Paging_WithoutAConfiguredSize_TheFirstPageIsTheServersOwn_TheRestAtItsLength()
    {
        // A server with default.page.size 2 and 5 hosts: no pagesize on the first request.
        var handler = new ScriptedHandler((request, _) =>
        {
            var p = ScriptedHandler.Parameters(request);
            var page = p.TryGetValue("page", out var text) ? int.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : 1;
            var size = p.TryGetValue("pagesize", out var s) ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : 2;
            var hosts = string.Join(',', Enumerable.Range((page - 1) * size, Math.Max(0, Math.Min(size, 5 - ((page - 1) * size)))).Select(i => $$"""{"id":"h{{i}}","name":"xen{{i}}","state":"Up"}"""));
            return Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK, $$$"""{"listhostsresponse":{"count":5,"host":[{{{hosts}}}]}}"""));
        });
        using var client = Client(handler);

        var hosts = await client.ListHostsAsync("c1");

        Assert.Equal(["xen0", "xen1", "xen2", "xen3", "xen4"], hosts.Select(h => h.Name));
        var asked = handler.Requests.Select(ScriptedHandler.Parameters).Select(p => (p.GetValueOrDefault("page"), p.GetValueOrDefault("pagesize"))).ToList();
        Assert.Equal((null, null), asked[0]);
        Assert.Equal([("2", "2"), ("3", "2")], asked.Skip(1).Order());
    }

    [Fact]
    public async Task Paging_OnceTheCountIsKnown_TheRestIsAskedFourPagesAtATime_AndReadInOrder()
    {
        // 20 hosts at 2 a page: after page 1, pages 2 to 5 are asked together; each answer waits until four are in flight
        // (a client asking one page after another never gets there), and page 6 only once one of them is answered.
        var inFlight = 0;
        var most = 0;
        var four = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new ScriptedHandler(async (request, _) =>
        {
            var p = ScriptedHandler.Parameters(request);
            var page = int.Parse(p["page"], System.Globalization.CultureInfo.InvariantCulture);
            if (page > 1)
            {
                var now = Interlocked.Increment(ref inFlight);
                InterlockedMax(ref most, now);
                if (now == 4)
                {
                    four.TrySetResult();
                }

                await four.Task.WaitAsync(TimeSpan.FromSeconds(20));
                await Task.Yield();
                Interlocked.Decrement(ref inFlight);
            }

            var hosts = string.Join(',', Enumerable.Range((page - 1) * 2, 2).Select(i => $$"""{"id":"h{{i:00}}","name":"xen{{i:00}}","state":"Up"}"""));
            return ScriptedHandler.Response(HttpStatusCode.OK, $$$"""{"listhostsresponse":{"count":20,"host":[{{{hosts}}}]}}""");
        });
        using var client = Client(handler, pageSize: 2);

        var hosts = await client.ListHostsAsync("c1");

        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"xen{i:00}"), hosts.Select(h => h.Name));
        Assert.Equal(4, most);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            handler.Requests.Select(r => ScriptedHandler.Parameters(r)["page"]).Order(StringComparer.Ordinal).OrderBy(x => x.Length));
    }

    [Fact]
    public async Task Paging_AListThatEndsBeforeItsCount_StopsThere_AsWhenAskedPageByPage()
    {
        // The count says 10 (5 pages of 2), but the list shrank: page 3 is short. What pages 4 and 5 say is not taken.
        var handler = new ScriptedHandler((request, _) =>
        {
            var page = int.Parse(ScriptedHandler.Parameters(request)["page"], System.Globalization.CultureInfo.InvariantCulture);
            var items = page switch { < 3 => 2, 3 => 1, _ => 2 };
            var hosts = string.Join(',', Enumerable.Range((page - 1) * 2, items).Select(i => $$"""{"id":"h{{i}}","name":"xen{{i}}","state":"Up"}"""));
            return Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK, $$$"""{"listhostsresponse":{"count":10,"host":[{{{hosts}}}]}}"""));
        });
        using var client = Client(handler, pageSize: 2);

        var hosts = await client.ListHostsAsync("c1");

        Assert.Equal(["xen0", "xen1", "xen2", "xen3", "xen4"], hosts.Select(h => h.Name));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    [Fact]
    public async Task Paging_AConfiguredSizeAboveTheServersLimit_Is431_ThenAskedAgainAtTheLimit()
    {
        var handler = new ScriptedHandler((request, _) =>
        {
            var p = ScriptedHandler.Parameters(request);
            var size = int.Parse(p["pagesize"], System.Globalization.CultureInfo.InvariantCulture);
            if (size > 2)
            {
                // BaseListCmd.getPageSize's InvalidParameterValueException.
                return Task.FromResult(ScriptedHandler.Response((HttpStatusCode)431,
                    """{"listhostsresponse":{"uuidList":[],"errorcode":431,"cserrorcode":4350,"errortext":"Page size can't exceed max allowed page size value: 2"}}"""));
            }

            var page = int.Parse(p["page"], System.Globalization.CultureInfo.InvariantCulture);
            var hosts = string.Join(',', Enumerable.Range((page - 1) * 2, page < 3 ? 2 : 1).Select(i => $$"""{"id":"h{{i}}","name":"xen{{i}}","state":"Up"}"""));
            return Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK, $$$"""{"listhostsresponse":{"count":5,"host":[{{{hosts}}}]}}"""));
        });
        using var client = Client(handler, pageSize: 500);

        var hosts = await client.ListHostsAsync("c1");
        var again = await client.ListHostsAsync("c1");

        Assert.Equal(5, hosts.Count);
        Assert.Equal(5, again.Count);
        // 431 once, then three pages; the second list starts at the learned size.
        Assert.Equal(["500", "2", "2", "2", "2", "2", "2"], handler.Requests.Select(r => ScriptedHandler.Parameters(r)["pagesize"]));
    }

    [Fact]
    public async Task ListVirtualMachines_AlsoAsksForProjectVms_MergesThem_WithStateOwnerAndOfferingTags()
    {
        var handler = new ScriptedHandler((request, _) =>
        {
            var p = ScriptedHandler.Parameters(request);
            return Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK, p["command"] switch
            {
                "listHosts" => """{"listhostsresponse":{"count":1,"host":[{"id":"h1","name":"xen1","state":"Up"}]}}""",
                "listServiceOfferings" => """{"listserviceofferingsresponse":{"count":1,"serviceoffering":[{"id":"so-ssd","name":"ssd","hosttags":"ssd,fast"}]}}""",
                // 4.18-4.20 answer projectid=-1 with project VMs only; main (listall) with every VM: merged by id either way.
                _ when p.GetValueOrDefault("projectid") == "-1" => """
                    {"listvirtualmachinesresponse":{"count":2,"virtualmachine":[
                      {"id":"v1","instancename":"i-2-10-VM","hostid":"h1","hostname":"xen1","state":"Running","account":"admin","affinitygroup":[]},
                      {"id":"v2","instancename":"i-5-11-VM","hostid":"h1","hostname":"xen1","state":"Running","projectid":"p1","project":"web","serviceofferingid":"so-ssd",
                       "affinitygroup":[{"id":"g1","name":"web","type":"host anti-affinity"}]}]}}
                    """,
                _ => """{"listvirtualmachinesresponse":{"count":1,"virtualmachine":[{"id":"v1","instancename":"i-2-10-VM","hostid":"h1","hostname":"xen1","state":"Running","account":"admin","affinitygroup":[]}]}}""",
            }));
        });
        using var client = Client(handler);

        var vms = await client.ListVirtualMachinesAsync("c1");

        Assert.Equal(["i-2-10-VM", "i-5-11-VM"], vms.Select(v => v.InstanceName));
        var project = vms[1];
        Assert.Equal(("p1", "Running", "h1", "so-ssd"), (project.ProjectId, project.State, project.HostId, project.ServiceOfferingId));
        Assert.Equal(["ssd", "fast"], project.RequiredHostTags);
        Assert.Equal("web", Assert.Single(project.AffinityGroups).Name);
        Assert.Empty(vms[0].RequiredHostTags);
        var vmCalls = handler.Requests.Select(ScriptedHandler.Parameters).Where(p => p["command"] == "listVirtualMachines").ToList();
        Assert.Equal([null, "-1"], vmCalls.Select(p => p.GetValueOrDefault("projectid")));
        Assert.All(vmCalls, p => Assert.Equal(("true", "c1"), (p["listall"], p["clusterid"])));
    }

    [Fact]
    public async Task ListHosts_ReadsHostTagsAndHaHost()
    {
        using var client = Client(ScriptedHandler.Answer(HttpStatusCode.OK, """
            {"listhostsresponse":{"count":1,"host":[{"id":"h1","name":"xen1","state":"Up","resourcestate":"Maintenance","hosttags":"ssd, gpu","hahost":true}]}}
            """));

        var host = Assert.Single(await client.ListHostsAsync("c1"));

        Assert.Equal(("Maintenance", true), (host.ResourceState, host.HaHost));
        Assert.Equal(["ssd", "gpu"], host.HostTags);
    }

    [Fact]
    public async Task ListDedicatedHosts_ReadsTheDedicatedHostItems()
    {
        var handler = ScriptedHandler.Answer(HttpStatusCode.OK, """
            {"listdedicatedhostsresponse":{"count":1,"dedicatedhost":[{"id":"d1","hostid":"h3","hostname":"xen3","domainid":"dom","accountid":"acc","affinitygroupid":"g9"}]}}
            """);
        using var client = Client(handler);

        var dedicated = Assert.Single(await client.ListDedicatedHostsAsync());

        Assert.Equal(new CloudStackDedicatedHost("h3", "xen3", "dom", "acc", "g9"), dedicated);
        Assert.Equal("listDedicatedHosts", ScriptedHandler.Parameters(handler.Requests.Single())["command"]);
    }

    [Fact]
    public void Options_ExpiryBeyondTheEnforcedCap_IsRefused()
    {
        var options = new CloudStackClientOptions { Endpoint = new Uri("http://cs/client/api"), ApiKey = "k", SecretKey = "s", Expiry = TimeSpan.FromMinutes(16) };

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new CloudStackClient(options, ScriptedHandler.Answer(HttpStatusCode.OK, "{}")));

        Assert.Contains("15 minutes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Credentials_PageSizeVariable_IsHonoured_AndABadOneRefused()
    {
        var env = new Dictionary<string, string>
        {
            [CloudStackCredentials.UrlVariable] = "http://cs:8080/client/api",
            [CloudStackCredentials.ApiKeyVariable] = "k",
            [CloudStackCredentials.SecretKeyVariable] = "s",
            [CloudStackCredentials.PageSizeVariable] = "100",
        };

        var credentials = CloudStackCredentials.Resolve(env.GetValueOrDefault);

        Assert.Equal(100, credentials!.PageSize);
        Assert.Equal(100, CloudStackClientOptions.FromCredentials(credentials).PageSize);
        env[CloudStackCredentials.PageSizeVariable] = "-1";
        Assert.Throws<CloudStackConfigurationException>(() => CloudStackCredentials.Resolve(env.GetValueOrDefault));
    }
}
