using System.Net;
using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Ports;

namespace RollingReboot.CloudStack.Tests;

public class CloudStackClientTests
{
    private const string Secret = "s3cr3t-VDaACYb0LV9eNjTetIOElcVQkvJck";
    private const string ClusterJson =
        """{"id":"c1","name":"CLUSTER-1","zoneid":"z1","zonename":"ZONE-1","podname":"POD-1","hypervisortype":"XenServer","allocationstate":"Enabled","managedstate":"Managed"}""";

    private static string ClustersAnswer(string cluster) => "{\"listclustersresponse\":{\"count\":1,\"cluster\":[" + cluster + "]}}";

    private static CloudStackClient Client(HttpMessageHandler handler, TimeProvider? clock = null, int retries = 2, TimeSpan? timeout = null) =>
        new(new CloudStackClientOptions
        {
            Endpoint = new Uri("http://cloudstack.test:8080/client/api"),
            ApiKey = "apikey-123456789",
            SecretKey = Secret,
            RetryCount = retries,
            RetryDelay = TimeSpan.Zero,
            PollInterval = TimeSpan.Zero,
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
        }, handler, clock ?? new FakeTimeProvider());

    [Fact]
    public async Task FindClusters_FiltersExactNameAndZone()
    {
        var handler = ScriptedHandler.Answer(HttpStatusCode.OK, $$$"""
            {"listclustersresponse":{"count":4,"cluster":[
              {{{ClusterJson}}},
              {"id":"c2","name":"CLUSTER-10","zoneid":"z1","zonename":"ZONE-1","managedstate":"Managed"},
              {"id":"c3","name":"CLUSTER-1","zoneid":"z2","zonename":"ZONE-2","managedstate":"Managed"},
              {"id":"c4","name":"cluster-1","zoneid":"z1","zonename":"ZONE-1","managedstate":"Managed"}]}}
            """);
        using var client = Client(handler);

        var all = await client.FindClustersAsync("CLUSTER-1", null);
        var byZoneName = await client.FindClustersAsync("CLUSTER-1", "zone-2");
        var byZoneId = await client.FindClustersAsync("CLUSTER-1", "z1");

        Assert.Equal(["c1", "c3"], all.Select(c => c.Id));
        Assert.Equal("c3", Assert.Single(byZoneName).Id);
        var cluster = Assert.Single(byZoneId);
        Assert.Equal(new CloudStackCluster("c1", "CLUSTER-1", "z1", "ZONE-1", "POD-1", "XenServer", "Enabled", "Managed"), cluster);
        var parameters = ScriptedHandler.Parameters(handler.Requests.First().Uri.Query);
        Assert.Equal("listClusters", parameters["command"]);
        Assert.Equal("json", parameters["response"]);
        Assert.Equal("CLUSTER-1", parameters["name"]);
    }

    [Fact]
    public async Task ListHosts_AsksForRoutingHostsOfTheCluster()
    {
        var handler = ScriptedHandler.Answer(HttpStatusCode.OK, """
            {"listhostsresponse":{"count":2,"host":[
              {"id":"h1","name":"xen1","state":"Up","resourcestate":"Enabled","ipaddress":"10.0.0.1","clusterid":"c1"},
              {"id":"h2","name":"xen2","state":"Alert","resourcestate":"Enabled","ipaddress":"10.0.0.2","clusterid":"c1"}]}}
            """);
        using var client = Client(handler);

        var hosts = await client.ListHostsAsync("c1");

        Assert.Equal([new CloudStackHost("h1", "xen1", "Up", "Enabled", "10.0.0.1"), new CloudStackHost("h2", "xen2", "Alert", "Enabled", "10.0.0.2")], hosts);
        var parameters = ScriptedHandler.Parameters(handler.Requests.Single().Uri.Query);
        Assert.Equal("c1", parameters["clusterid"]);
        Assert.Equal("Routing", parameters["type"]);
    }

    [Fact]
    public async Task ListHosts_EmptyAnswer_IsAnEmptyList()
    {
        using var client = Client(ScriptedHandler.Answer(HttpStatusCode.OK, """{"listhostsresponse":{}}"""));

        Assert.Empty(await client.ListHostsAsync("c1"));
    }

    [Fact]
    public async Task ListHosts_ManyPages_ReadsEveryPage()
    {
        var handler = new ScriptedHandler((request, _) =>
        {
            var page = int.Parse(ScriptedHandler.Parameters(request.RequestUri!.Query)["page"], System.Globalization.CultureInfo.InvariantCulture);
            var hosts = string.Join(',', Enumerable.Range((page - 1) * 2, page < 3 ? 2 : 1).Select(i => $$"""{"id":"h{{i}}","name":"xen{{i}}","state":"Up"}"""));
            return Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK, $$$"""{"listhostsresponse":{"count":5,"host":[{{{hosts}}}]}}"""));
        });
        using var client = new CloudStackClient(new CloudStackClientOptions
        {
            Endpoint = new Uri("http://cloudstack.test/client/api"),
            ApiKey = "k",
            SecretKey = Secret,
            PageSize = 2,
        }, handler, new FakeTimeProvider());

        var hosts = await client.ListHostsAsync("c1");

        Assert.Equal(["xen0", "xen1", "xen2", "xen3", "xen4"], hosts.Select(h => h.Name));
        Assert.Equal(3, handler.Calls);
    }

    [Fact]
    public async Task ListVirtualMachines_KeepsVmsOnTheClustersHostsWithAffinityGroups()
    {
        var handler = new ScriptedHandler((request, _) => Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK,
            ScriptedHandler.Command(request) == "listHosts"
                ? """{"listhostsresponse":{"count":1,"host":[{"id":"h1","name":"xen1","state":"Up"}]}}"""
                : """
                  {"listvirtualmachinesresponse":{"count":3,"virtualmachine":[
                    {"id":"v1","name":"web","instancename":"i-2-10-VM","hostid":"h1","hostname":"xen1",
                     "affinitygroup":[{"id":"g1","name":"web","type":"host anti-affinity"}]},
                    {"id":"v2","name":"db","instancename":"i-2-11-VM","hostid":"h9","hostname":"other-cluster-host","affinitygroup":[]},
                    {"id":"v3","name":"stopped","instancename":"i-2-12-VM","state":"Stopped"}]}}
                  """)));
        using var client = Client(handler);

        var vms = await client.ListVirtualMachinesAsync("c1");

        var vm = Assert.Single(vms);
        Assert.Equal("i-2-10-VM", vm.InstanceName);
        Assert.Equal("xen1", vm.HostName);
        Assert.Equal(new CloudStackAffinityGroup("g1", "web", "host anti-affinity"), Assert.Single(vm.AffinityGroups));
        var parameters = ScriptedHandler.Parameters(handler.Requests.Last().Uri.Query);
        Assert.Equal("true", parameters["listall"]);
        Assert.Equal("c1", parameters["clusterid"]);
    }

    [Fact]
    public async Task ListPendingAsyncJobs_AsksEveryAccountsJobs_KeepsOnlyPendingOnes()
    {
        var handler = ScriptedHandler.Answer(HttpStatusCode.OK, """
            {"listasyncjobsresponse":{"count":3,"asyncjobs":[
              {"accountid":"a1","account":"ops","userid":"u1","cmd":"org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd",
               "jobstatus":0,"jobprocstatus":0,"jobresultcode":0,"jobinstancetype":"VirtualMachine","jobinstanceid":"v1",
               "created":"2026-11-22T11:58:00+0100","jobid":"j1"},
              {"account":"admin","cmd":"org.apache.cloudstack.api.command.admin.host.PrepareForMaintenanceCmd","jobstatus":1,
               "jobinstancetype":"Host","jobinstanceid":"h1","created":"2026-11-22T10:00:00+0000","completed":"2026-11-22T10:05:00+0000","jobid":"j2",
               "jobresulttype":"object","jobresult":{"host":{"id":"h1"}}},
              {"account":"admin","cmd":"org.apache.cloudstack.api.command.user.vm.DeployVMCmd","jobstatus":0,"jobid":"j3"}]}}
            """);
        using var client = Client(handler);

        var jobs = await client.ListPendingAsyncJobsAsync();

        Assert.Equal(
            [new CloudStackAsyncJob("j1", "org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd", 0, "VirtualMachine", "v1", new DateTimeOffset(2026, 11, 22, 10, 58, 0, TimeSpan.Zero), "ops"),
             new CloudStackAsyncJob("j3", "org.apache.cloudstack.api.command.user.vm.DeployVMCmd", 0, null, null, null, "admin")],
            jobs);
        Assert.Equal("MigrateVMCmd", jobs[0].ShortCommand);
        // Asked twice, the second time for project resources (ignored by versions whose listAsyncJobs has no projectid), merged.
        Assert.Equal(2, handler.Calls);
        var parameters = handler.Requests.Select(ScriptedHandler.Parameters).ToList();
        Assert.All(parameters, p => Assert.Equal(("listAsyncJobs", "true"), (p["command"], p["listall"])));
        Assert.Equal([null, "-1"], parameters.Select(p => p.GetValueOrDefault("projectid")));
    }

    [Fact]
    public async Task ListPendingAsyncJobs_JobWithoutStatus_IsAnAnswerRollrebootCannotRead()
    {
        using var client = Client(ScriptedHandler.Answer(HttpStatusCode.OK, """{"listasyncjobsresponse":{"count":1,"asyncjobs":[{"jobid":"j1","cmd":"X"}]}}"""));

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ListPendingAsyncJobsAsync());

        Assert.Contains("jobstatus", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(429)]
    [InlineData(502)]
    [InlineData(503)]
    public async Task ListPendingAsyncJobs_ApiLimitOrProxyError_IsRetriedLikeOtherReads(int status)
    {
        var handler = new ScriptedHandler((_, call) => Task.FromResult(call == 1
            ? ScriptedHandler.Response((HttpStatusCode)status, $$$"""{"listasyncjobsresponse":{"errorcode":{{{status}}},"cserrorcode":9999,"errortext":"busy"}}""")
            : ScriptedHandler.Response(HttpStatusCode.OK, """{"listasyncjobsresponse":{}}""")));
        using var client = Client(handler);

        Assert.Empty(await client.ListPendingAsyncJobsAsync());
        Assert.Equal(3, handler.Calls);
    }

    [Theory]
    [InlineData(530)]
    [InlineData(531)]
    [InlineData(533)]
    [InlineData(534)]
    [InlineData(537)]
    public async Task CloudStackSemanticErrors_AreNotRetried(int code)
    {
        var handler = ScriptedHandler.Answer((HttpStatusCode)code, $$$"""{"listhostsresponse":{"errorcode":{{{code}}},"cserrorcode":4250,"errortext":"said once, said again"}}""");
        using var client = Client(handler, retries: 3);

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ListHostsAsync("c1"));

        Assert.Equal(code, ex.ErrorCode);
        Assert.Equal(1, handler.Calls);
    }

    [Fact]
    public async Task UpdateCluster_ApiLimit_IsSentAgain_OtherFailuresAreNot()
    {
        var updates = 0;
        var handler = new ScriptedHandler((request, _) =>
        {
            if (ScriptedHandler.Command(request) != "updateCluster")
            {
                return Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK, ClustersAnswer(updates >= 2 ? ClusterJson.Replace("\"Managed\"", "\"Unmanaged\"", StringComparison.Ordinal) : ClusterJson)));
            }

            // ApiServer.commandAvailable: RequestLimitException, before the command ran.
            return Task.FromResult(++updates == 1
                ? ScriptedHandler.Response((HttpStatusCode)429, """{"updateclusterresponse":{"errorcode":429,"cserrorcode":9999,"errortext":"The given user has reached his/her account api limit"}}""")
                : ScriptedHandler.Response(HttpStatusCode.OK, """{"updateclusterresponse":{"cluster":{"id":"c1"}}}"""));
        });
        using var client = Client(handler, retries: 3);

        Assert.Equal("Unmanaged", await client.SetManagedStateAsync("c1", managed: false));
        Assert.Equal(2, updates);
    }

    [Fact]
    public async Task ListVirtualMachines_WithoutInstanceName_SaysRootAdminKeysAreNeeded()
    {
        var handler = new ScriptedHandler((request, _) => Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK,
            ScriptedHandler.Command(request) == "listHosts"
                ? """{"listhostsresponse":{"count":1,"host":[{"id":"h1","name":"xen1","state":"Up"}]}}"""
                : """{"listvirtualmachinesresponse":{"count":1,"virtualmachine":[{"id":"v1","name":"web","hostid":"h1"}]}}""")));
        using var client = Client(handler);

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ListVirtualMachinesAsync("c1"));

        Assert.Contains("root admin", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ErrorBody_BecomesCloudStackExceptionWithItsCodes()
    {
        using var client = Client(ScriptedHandler.Answer((HttpStatusCode)431, """
            {"listclustersresponse":{"uuidList":[],"errorcode":431,"cserrorcode":4350,"errortext":"Unable to execute API command listclusters due to invalid value."}}
            """));

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.GetClusterAsync("nope"));

        Assert.Equal(431, ex.ErrorCode);
        Assert.Equal(4350, ex.CsErrorCode);
        Assert.Equal("Unable to execute API command listclusters due to invalid value.", ex.ErrorText);
    }

    [Fact]
    public async Task ErrorBody_UnderErrorResponseName_IsStillRead()
    {
        using var client = Client(ScriptedHandler.Answer((HttpStatusCode)432, """
            {"errorresponse":{"uuidList":[],"errorcode":432,"cserrorcode":9999,"errortext":"The given command does not exist"}}
            """));

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ListHostsAsync("c1"));

        Assert.Equal(432, ex.ErrorCode);
        Assert.Equal(9999, ex.CsErrorCode);
    }

    [Fact]
    public async Task Http500WithHtml_IsCloudStackExceptionAfterRetries()
    {
        var handler = ScriptedHandler.Answer(HttpStatusCode.InternalServerError,
            "<html><head><title>500 Internal Server Error</title></head><body>Tomcat</body></html>", "text/html");
        using var client = Client(handler, retries: 2);

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.FindClustersAsync("CLUSTER-1", null));

        Assert.Equal(500, ex.ErrorCode);
        Assert.Contains("500 Internal Server Error", ex.Message, StringComparison.Ordinal);
        Assert.Equal(3, handler.Calls);
    }

    [Theory]
    [InlineData("not json at all")]
    [InlineData("{\"listclustersresponse\":")]
    [InlineData("[1,2,3]")]
    [InlineData("{\"listclustersresponse\":{\"count\":1,\"cluster\":{\"id\":\"c1\"}}}")]
    [InlineData("{\"listclustersresponse\":{\"count\":1,\"cluster\":[{\"name\":\"CLUSTER-1\"}]}}")]
    [InlineData("{\"listclustersresponse\":{\"count\":1,\"cluster\":[42]}}")]
    [InlineData("{\"something\":1,\"else\":2}")]
    [InlineData("")]
    public async Task MalformedSuccessBody_IsCloudStackExceptionAndNotRetried(string body)
    {
        var handler = ScriptedHandler.Answer(HttpStatusCode.OK, body);
        using var client = Client(handler);

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.FindClustersAsync("CLUSTER-1", null));

        Assert.Contains("cannot read", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, handler.Calls);
    }

    [Fact]
    public async Task Unauthorized_SaysKeysAreWrongWithoutShowingTheSecret()
    {
        using var client = Client(ScriptedHandler.Answer(HttpStatusCode.Unauthorized, """
            {"listclustersresponse":{"uuidList":[],"errorcode":401,"errortext":"unable to verify user credentials and/or request signature"}}
            """));

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.FindClustersAsync("CLUSTER-1", null));

        Assert.Equal(401, ex.ErrorCode);
        Assert.Contains("API key or secret key is wrong", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, ex.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unauthorized_WithHtmlBody_StillSaysKeysAreWrong()
    {
        using var client = Client(ScriptedHandler.Answer(HttpStatusCode.Unauthorized, "<html>401</html>", "text/html"));

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.ListHostsAsync("c1"));

        Assert.Equal(401, ex.ErrorCode);
        Assert.Contains("API key or secret key is wrong", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectionFailure_OnRead_IsRetriedThenSucceeds()
    {
        var handler = new ScriptedHandler((_, call) => call < 3
            ? throw new HttpRequestException("Connection refused")
            : Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK, ClustersAnswer(ClusterJson))));
        using var client = Client(handler, retries: 3);

        var cluster = await client.GetClusterAsync("c1");

        Assert.Equal("CLUSTER-1", cluster.Name);
        Assert.Equal(3, handler.Calls);
    }

    [Fact]
    public async Task ConnectionFailure_AfterRetries_IsCloudStackException()
    {
        var handler = new ScriptedHandler((_, _) => throw new HttpRequestException("Connection refused"));
        using var client = Client(handler, retries: 1);

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.GetClusterAsync("c1"));

        Assert.Contains("Cannot reach CloudStack at http://cloudstack.test:8080/client/api", ex.Message, StringComparison.Ordinal);
        Assert.IsType<HttpRequestException>(ex.InnerException);
        Assert.Equal(2, handler.Calls);
    }

    [Fact]
    public async Task ClientErrors_AreNotRetried()
    {
        var handler = ScriptedHandler.Answer((HttpStatusCode)431, """{"listhostsresponse":{"errorcode":431,"cserrorcode":4350,"errortext":"bad"}}""");
        using var client = Client(handler, retries: 3);

        await Assert.ThrowsAsync<CloudStackException>(() => client.ListHostsAsync("c1"));

        Assert.Equal(1, handler.Calls);
    }

    [Fact]
    public async Task Timeout_OnTheInjectedClock_IsCloudStackException()
    {
        var clock = new FakeTimeProvider();
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new ScriptedHandler(async (_, _, token) =>
        {
            arrived.TrySetResult();
            await Task.Delay(Timeout.InfiniteTimeSpan, clock, token);
            throw new InvalidOperationException("unreachable");
        });
        using var client = Client(handler, clock, retries: 0, timeout: TimeSpan.FromSeconds(30));

        var call = client.ListHostsAsync("c1");
        await arrived.Task;
        clock.Advance(TimeSpan.FromSeconds(31));
        var ex = await Assert.ThrowsAsync<CloudStackException>(() => call);

        Assert.Contains("did not answer listHosts within 00:00:30", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CallerCancellation_IsOperationCanceledNotCloudStackException()
    {
        using var cancellation = new CancellationTokenSource();
        var handler = new ScriptedHandler(async (_, _) =>
        {
            await cancellation.CancelAsync();
            cancellation.Token.ThrowIfCancellationRequested();
            throw new InvalidOperationException("unreachable");
        });
        using var client = Client(handler);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ListHostsAsync("c1", cancellation.Token));
    }

    [Fact]
    public async Task SetManagedState_FailedUpdate_IsNotRetriedAndTheReReadStateDecides()
    {
        var handler = new ScriptedHandler((request, _) => Task.FromResult(ScriptedHandler.Command(request) == "updateCluster"
            ? ScriptedHandler.Response((HttpStatusCode)530, """{"updateclusterresponse":{"errorcode":530,"cserrorcode":4250,"errortext":"boom"}}""")
            : ScriptedHandler.Response(HttpStatusCode.OK, ClustersAnswer(ClusterJson))));
        using var client = Client(handler, retries: 3);

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.SetManagedStateAsync("c1", managed: false));

        Assert.Equal(530, ex.ErrorCode);
        Assert.Contains("left cluster CLUSTER-1 Managed: boom", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, handler.Requests.Count(r => ScriptedHandler.Parameters(r)["command"] == "updateCluster"));
    }

    [Fact]
    public async Task SetManagedState_FailedUpdateThatTookEffect_Succeeds()
    {
        // The connection dropped after the server had done the work: the re-read shows it.
        var handler = new ScriptedHandler((request, _) => ScriptedHandler.Command(request) == "updateCluster"
            ? throw new HttpRequestException("Connection reset by peer")
            : Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK,
                ClustersAnswer(ClusterJson.Replace("\"Managed\"", "\"Unmanaged\"", StringComparison.Ordinal)))));
        using var client = Client(handler);

        Assert.Equal("Unmanaged", await client.SetManagedStateAsync("c1", managed: false));
    }

    [Fact]
    public async Task SetManagedState_AnswerShowingOldState_IsNotTrusted()
    {
        var reads = 0;
        var handler = new ScriptedHandler((request, _) => Task.FromResult(ScriptedHandler.Command(request) == "updateCluster"
            ? ScriptedHandler.Response(HttpStatusCode.OK, "{\"updateclusterresponse\":{\"cluster\":" + ClusterJson + "}}")
            : ScriptedHandler.Response(HttpStatusCode.OK, ClustersAnswer(ClusterJson.Replace("\"Managed\"",
                Interlocked.Increment(ref reads) < 3 ? "\"PrepareUnmanaged\"" : "\"Unmanaged\"", StringComparison.Ordinal)))));
        using var client = Client(handler);

        Assert.Equal("Unmanaged", await client.SetManagedStateAsync("c1", managed: false));
        Assert.Equal(3, reads);
    }

    [Fact]
    public async Task SetManagedState_PrepareUnmanagedError_IsAClearException()
    {
        var handler = new ScriptedHandler((request, _) => Task.FromResult(ScriptedHandler.Command(request) == "updateCluster"
            ? ScriptedHandler.Response((HttpStatusCode)530, """{"updateclusterresponse":{"errorcode":530,"cserrorcode":4250,"errortext":"PrepareUnmanaged Failed due to some hosts are still in UP status"}}""")
            : ScriptedHandler.Response(HttpStatusCode.OK, ClustersAnswer(ClusterJson.Replace("\"Managed\"", "\"PrepareUnmanagedError\"", StringComparison.Ordinal)))));
        using var client = Client(handler);

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.SetManagedStateAsync("c1", managed: false));

        Assert.Equal(530, ex.ErrorCode);
        Assert.Contains("could not unmanage cluster CLUSTER-1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("PrepareUnmanagedError", ex.Message, StringComparison.Ordinal);
        Assert.Contains("managedstate=Managed", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitForAsyncJob_PollsUntilSuccess()
    {
        var handler = new ScriptedHandler((_, call) => Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK, call < 3
            ? """{"queryasyncjobresultresponse":{"jobid":"j1","jobstatus":0}}"""
            : """{"queryasyncjobresultresponse":{"jobid":"j1","jobstatus":1,"jobresult":{"host":{"id":"h1"}}}}""")));
        using var client = Client(handler);

        var result = await client.WaitForAsyncJobAsync("j1");

        Assert.Equal("h1", result.GetProperty("host").GetProperty("id").GetString());
        Assert.Equal(3, handler.Calls);
    }

    [Fact]
    public async Task WaitForAsyncJob_FailedJob_CarriesTheJobsCodes()
    {
        using var client = Client(ScriptedHandler.Answer(HttpStatusCode.OK, """
            {"queryasyncjobresultresponse":{"jobid":"j1","cmd":"org.apache.cloudstack.api.command.admin.host.PrepareForMaintenanceCmd","jobstatus":2,"jobresultcode":530,
             "jobresult":{"errorcode":530,"cserrorcode":4250,"errortext":"Host is not in a state to go to maintenance"}}}
            """));

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.WaitForAsyncJobAsync("j1"));

        Assert.Equal(530, ex.ErrorCode);
        Assert.Equal(4250, ex.CsErrorCode);
        Assert.Contains("Host is not in a state to go to maintenance", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitForAsyncJob_NeverEnding_IsBoundedOnTheInjectedClock()
    {
        var clock = new FakeTimeProvider();
        var handler = new ScriptedHandler((_, _) =>
        {
            clock.Advance(TimeSpan.FromMinutes(7));
            return Task.FromResult(ScriptedHandler.Response(HttpStatusCode.OK, """{"queryasyncjobresultresponse":{"jobid":"j1","jobstatus":0}}"""));
        });
        using var client = Client(handler, clock, timeout: TimeSpan.FromHours(1));

        var ex = await Assert.ThrowsAsync<CloudStackException>(() => client.WaitForAsyncJobAsync("j1"));

        Assert.Contains("still pending after 00:30:00", ex.Message, StringComparison.Ordinal);
        Assert.Equal(5, handler.Calls);
    }

    [Fact]
    public async Task Post_SendsASignedFormBody()
    {
        var handler = ScriptedHandler.Answer(HttpStatusCode.OK, """{"listhostsresponse":{}}""");
        using var client = new CloudStackClient(new CloudStackClientOptions
        {
            Endpoint = new Uri("http://cloudstack.test:8080"),
            ApiKey = "k",
            SecretKey = Secret,
            UsePost = true,
        }, handler, new FakeTimeProvider());

        await client.ListHostsAsync("c1");

        var request = handler.Requests.Single();
        Assert.Equal("POST", request.Method);
        Assert.Equal("http://cloudstack.test:8080/client/api", request.Uri.ToString());
        var parameters = ScriptedHandler.Parameters(request.Body!);
        Assert.Equal("listHosts", parameters["command"]);
        Assert.True(Lab.CloudStack.LabSignatureVerifier.Verify(parameters, Secret));
    }

    [Fact]
    public void OptionsAndClient_ToString_HideTheSecret()
    {
        var options = new CloudStackClientOptions { Endpoint = new Uri("http://user:pw@cs:8080/client/api"), ApiKey = "apikey-123456789", SecretKey = Secret };
        using var client = new CloudStackClient(options, ScriptedHandler.Answer(HttpStatusCode.OK, "{}"));

        Assert.DoesNotContain(Secret, options.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, client.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("pw", options.ToString(), StringComparison.Ordinal);
    }
}
