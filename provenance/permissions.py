from rest_framework.permissions import IsAuthenticated as RolePermission  # replaced below
