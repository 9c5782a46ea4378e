using System.Net;
using RollingReboot.Cli.Adapters;
using RollingReboot.Core.Ports;

namespace RollingReboot.Cli.Tests.Adapters;

/// <summary>The request the adapter makes (path under a prefix, basic authentication from the URL) and what it reads.
/// The answers themselves come from a real Prometheus in AlertGateEndToEndTests.</summary>
public sealed class PrometheusAlertsTests
{
    private sealed class Recording(HttpStatusCode status, string body) : HttpMessageHandler
    {
        public HttpRequestMessage? Request { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Request = request;
            return Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(body) });
        }
    }

    [Fact]
    public async Task UrlWithCredentialsAndAPrefix_AsksUnderThePrefix_WithBasicAuth_DescribedWithoutThem()
    {
        var handler = new Recording(HttpStatusCode.OK, """{"status":"success","data":{"alerts":[{"labels":{"alertname":"HostDown"},"state":"firing"},{"labels":{"alertname":"Disk"},"state":"pending"}]}}""");
        using var alerts = new PrometheusAlerts(new Uri("https://ops:s3cret@prom.example:9443/prometheus"), handler);
        var list = await alerts.GetActiveAlertsAsync();
        Assert.Equal([new ActiveAlert("HostDown", "firing"), new ActiveAlert("Disk", "pending")], list);
        Assert.Equal("https://prom.example:9443/prometheus/api/v1/alerts", handler.Request!.RequestUri!.AbsoluteUri);
        Assert.Equal("Basic " + Convert.ToBase64String("ops:s3cret"u8.ToArray()), handler.Request.Headers.Authorization!.ToString());
        Assert.Equal("Prometheus at https://prom.example:9443", alerts.Description);
    }

    [Theory]
    [InlineData(HttpStatusCode.Unauthorized, "nope", "HTTP 401 Unauthorized")]
    [InlineData(HttpStatusCode.OK, "<html>", "the answer is not JSON")]
    [InlineData(HttpStatusCode.OK, """{"status":"error","error":"bad things"}""", "Prometheus says: bad things")]
    public async Task NotAnAlertsAnswer_IsAnAlertSourceException(HttpStatusCode status, string body, string expected)
    {
        using var alerts = new PrometheusAlerts(new Uri("http://prom:9090/"), new Recording(status, body));
        var e = await Assert.ThrowsAsync<AlertSourceException>(() => alerts.GetActiveAlertsAsync());
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
    }
}
