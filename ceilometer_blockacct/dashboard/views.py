# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""The panel's pages: the disks, and one disk over a range.

The project view shows the current project's disks only; the admin view
(``admin = True``) shows whatever Gnocchi gives the admin.  Both read
Gnocchi as the logged-in user (:mod:`.client`).  A disk Gnocchi refuses
(another customer's) is an HTTP 403 page with no number on it.
"""

import datetime
import logging

from django.conf import settings
from django import urls
from django.utils import timezone
from gnocchiclient import exceptions as g_exc
from horizon import views

from ceilometer_blockacct.dashboard import client as gclient
from ceilometer_blockacct.dashboard import data

LOG = logging.getLogger(__name__)


class _GnocchiView(views.HorizonTemplateView):
    admin = False
    status = 200

    def project_id(self):
        """The project whose disks the view is limited to (None: admin)."""
        return None if self.admin else self.request.user.project_id

    def disk_url(self, disk_id):
        return urls.reverse('horizon:%s:disk_io:disk' % (
            'admin' if self.admin else 'project'), args=[disk_id])

    def gnocchi(self):
        return gclient.for_user(self.request.user, settings)

    def failure(self, context, exc):
        """Put a known Gnocchi failure into ``context``; else re-raise."""
        known = gclient.explain(exc, settings, self.request.user)
        if known is None:
            raise exc
        LOG.warning('Disk I/O panel: %(what)s for user %(user)s: %(exc)s',
                    {'what': type(known).__name__, 'exc': exc,
                     'user': self.request.user.id})
        if isinstance(known, gclient.Refused):
            self.status = 403
            context['refused'] = str(known)
        else:
            self.status = 503
            context['error'] = str(known)

    def render_to_response(self, context, **kwargs):
        kwargs.setdefault('status', self.status)
        context = self.render_context_with_title(context)
        return self.response_class(
            request=self.request, template=self.get_template_names(),
            context=context, using=self.template_engine, **kwargs)


class IndexView(_GnocchiView):
    """Every disk of the project (admin: of every project)."""

    template_name = 'blockacct_disk_io/index.html'
    page_title = 'Disk I/O'

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context['admin'] = self.admin
        context['disks'] = []
        try:
            context['disks'] = [(disk, self.disk_url(disk.id)) for disk in
                                data.list_disks(self.gnocchi(),
                                                self.project_id())]
        except Exception as exc:  # noqa: B902 -- failure() re-raises
            self.failure(context, exc)
        return context


class DiskView(_GnocchiView):
    """One disk over a range: charts, or the same numbers as a table."""

    template_name = 'blockacct_disk_io/disk.html'
    page_title = 'Disk I/O'

    def get_context_data(self, disk_id, **kwargs):
        context = super().get_context_data(**kwargs)
        key = self.request.GET.get('range', data.DEFAULT_RANGE)
        rng = data.RANGES.get(key, data.RANGES[data.DEFAULT_RANGE])
        view = 'table' if self.request.GET.get('view') == 'table' \
            else 'chart'
        context.update(admin=self.admin, disk_id=disk_id, rng=rng,
                       here=self.disk_url(disk_id), index=urls.reverse(
                           'horizon:%s:disk_io:index' % (
                               'admin' if self.admin else 'project')),
                       ranges=list(data.RANGES.values()), view=view,
                       columns=data.COLUMNS, ops=data.OPS)
        try:
            client = self.gnocchi()
            try:
                resource = data.get_disk(client, disk_id,
                                         self.project_id())
            except (data.NoSuchDisk, g_exc.NotFound):
                self.status = 404
                context['missing'] = ('No disk %s in this project.'
                                      % disk_id)
                return context
            names = data.instance_names(
                client, {'=': {'id': resource.get('instance_id') or ''}})
            now = timezone.now().astimezone(datetime.timezone.utc)
            measures = data.fetch_measures(client, resource, rng, now)
        except Exception as exc:  # noqa: B902 -- failure() re-raises
            self.failure(context, exc)
            return context
        series = data.build_series(measures, rng)
        rows, totals = data.table(series)
        context.update(
            resource=resource, series=series, rows=rows, totals=totals,
            instance_name=names.get(resource.get('instance_id')),
            charts=data.chart_data(series),
            groups=_groups(data.COLUMNS))
        return context


def _groups(columns):
    """[(group, number of columns)] of the table's first header row."""
    out = []
    for _key, group, _op, _unit in columns:
        if out and out[-1][0] == group:
            out[-1] = (group, out[-1][1] + 1)
        else:
            out.append((group, 1))
    return out
